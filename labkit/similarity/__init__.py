"""``make similarity``: rank pairs of alike answers per question (``compare``), the page a person
reads them on (``page``), and its benchmark on a synthetic class (``bench``)."""
