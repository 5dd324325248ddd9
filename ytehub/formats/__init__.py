"""National data formats ytehub reads and writes (one subpackage per standard).

* :mod:`ytehub.formats.qd4750` — the BHYT claim XML of QĐ 130/QĐ-BYT as amended by
  QĐ 4750/QĐ-BYT (envelope ``GIAMDINHHS``, tables XML1–XML15, the separate check-in document).
"""
