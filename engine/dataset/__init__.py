"""Training-dataset building blocks: resolution buckets and the trainers' formats.

`engine.export` drives them; see `engine.dataset.bucket` (WxHxF normalisation,
as the LTX trainers' preprocessing does it) and `engine.dataset.formats`
(``dataset.jsonl`` / ``dataset.csv`` manifests and the README of each trainer).
"""
