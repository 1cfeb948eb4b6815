"""`persona studio`: a local web app where the person who knows the material reviews every record before it trains.

Modules: ``state`` (records, decisions, provenance as the app serves them), ``provenance`` (transcript excerpts with
the answer's words marked), ``security`` (loopback/token/origin rules), ``api`` (JSON under /api/), ``pages``
(server-rendered HTML), ``app`` (wiring and serving). The review file's logic lives in ``dataset.review``: the
build applies the same decisions.
"""
