"""QIDO-RS searches (PS3.18 §10.6): what can be matched, how a request's
parameters become matching rules (PS3.4 C.2.2.2), and how results are shaped.

The HTTP side lives in ``dicomhub.services.qido`` and the SQL in
``dicomhub.index.query``.
"""
