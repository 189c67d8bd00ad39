"""Result records, tables, the HTML report and comparisons (everything read back from
``<results>/records``)."""
