"""`persona serve` on the studio's web stack: the OpenAI-compatible app (app.py) and the batcher that decodes
concurrent requests together (batcher.py). Request parsing and the response shapes live in personaforge.serve."""
