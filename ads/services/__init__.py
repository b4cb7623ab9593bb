"""Writes for ads, a module per domain; reads are in ads.selectors.

- `campaigns`: `campaign_create`, a brief for one of an advertiser's products.
- `drafting`: the drafting pipeline (`draft_creatives`) and its jobs (create, execute,
  cancel, the stale sweep).
- `review`: approve, edit, reject a draft (audited); export; import performance.
- `training`: LoRA training runs (create, execute, cancel, the stale sweep) and adapters
  (promote, retire).
"""
