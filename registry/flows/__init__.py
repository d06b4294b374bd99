"""Data customs (cross-border data flows), the parts split out of ``registry.services.flows``.

* :mod:`registry.flows.rules` — the rule engine: which mechanism (exemption, standard contract or
  certification, security assessment) a flow needs, with the regulation's cases kept as versioned
  tables in ``registry/flows/rules/*.json`` (package data), each rule naming its source article
  (docs/FORMAT.md §11.1).
"""
