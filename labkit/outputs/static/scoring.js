(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("labkit-scores").textContent);
  var status = document.getElementById("saved");
  function recorded(column, student) {
    var byStudent = data.recorded[column] || {};
    return byStudent[student] || {points: "", comment: ""};
  }
  function load() {
    try { return JSON.parse(window.localStorage.getItem(data.key) || "{}") || {}; }
    catch (error) { return {}; }
  }
  function save(state) {
    try { window.localStorage.setItem(data.key, JSON.stringify(state)); return true; }
    catch (error) { status.textContent = "Cannot keep your entries in this browser: download them before closing the page."; return false; }
  }
  var state = load();
  Object.keys(state).forEach(function (key) {
    var entry = state[key], file = recorded(entry.column, entry.student);
    if (!entry.base || file.points !== entry.base.points || file.comment !== entry.base.comment) {
      delete state[key];
    }
  });
  save(state);
  function current(column, student) {
    var entry = state[column + "\n" + student];
    return entry ? entry : recorded(column, student);
  }
  function valid(text) {
    if (text === "") { return true; }
    var value = Number(text.replace(",", "."));  // "1,5": a decimal comma, as make grade reads it
    return /^\s*[0-9]*[.,]?[0-9]+\s*$/.test(text) && value >= 0 && value <= data.points + 1e-9;
  }
  var sections = document.querySelectorAll("section.answer");
  Array.prototype.forEach.call(sections, function (section) {
    var student = section.getAttribute("data-student");
    var points = section.querySelector("input.points");
    var comment = section.querySelector("textarea.comment");
    if (!points) { return; }  // unanswered: 0 points without grading, no box
    var entry = current(data.column, student);
    points.value = entry.points;
    comment.value = entry.comment;
    function check() { points.classList.toggle("invalid", !valid(points.value.trim())); }
    function changed() {
      check();
      state[data.column + "\n" + student] = {
        column: data.column, student: student, points: points.value.trim(),
        comment: comment.value.trim(), base: recorded(data.column, student)};
      if (save(state)) { status.textContent = "Kept in this browser; download when done."; }
    }
    points.addEventListener("input", changed);
    comment.addEventListener("input", changed);
    check();
  });
  function cell(value) {
    value = String(value);
    // Spreadsheet-safe, as gradebook.spreadsheet_safe: text that starts like a formula (or with
    // an apostrophe) gets a leading apostrophe; numbers stay numbers.
    if (/^[=+\-@\t\r']/.test(value) && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
      value = "'" + value;
    }
    return /[",;\t\r\n]|^\s|\s$/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  document.getElementById("download").addEventListener("click", function () {
    // A reason column only when the file has rows that need it (overrides of autograded scores).
    var other = data.other || [], reason = other.length ? ["reason"] : [];
    var lines = [["student", "assignment", "question", "points", "comment"].concat(reason)];
    data.questions.forEach(function (question) {
      data.students.forEach(function (student) {
        var entry = current(question.column, student);
        lines.push([student, question.assignment, question.name, entry.points, entry.comment]
                   .concat(other.length ? [""] : []));
      });
    });
    other.forEach(function (row) { lines.push(row); });
    var text = lines.map(function (row) { return row.map(cell).join(","); }).join("\n") + "\n";
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
    link.download = data.file;
    document.body.appendChild(link);
    link.click();
    link.remove();
    status.textContent = "Downloaded " + data.file + ": put it at " + data.path + " and run make grade.";
  });
}());
