"""Data customs (cross-border data flows), the parts split out of ``registry.services.flows``.

* :mod:`registry.flows.rules` — the rule tables (``rules/*.json``, ``rules/ftz/*.json``, package
  data) and the engine that says what a flow needs, each rule naming its source (FORMAT.md §11.1);
  ``python -m registry.flows.rules FILE…`` checks a table before it ships.
* :mod:`registry.flows.assess` — the tables applied to one declaration and to a whole trace:
  annual totals per exporter, splitting, GBA scope, filing deadlines (FORMAT.md §11.2).
* :mod:`registry.flows.declare` — the declaration's 2024 fields checked, and the rule applied
  when a flow is declared (refusals: ``legal_basis_required``, ``export_prohibited``, ``gba_scope``).
"""
