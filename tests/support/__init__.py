"""What the tests (and the benchmarks) share: no tests and no fixtures here (fixtures live in the
conftest files). ``anvil``: the one way a test starts a private anvil (on ``ledger_node.node``);
``services``: PostgreSQL/Chromium requirements; ``samples``: records; ``factory``: an offline world
of issuers and signed credentials; ``contracts``: the contracts deployed with web3; ``indexer``:
fast chain histories; ``procs``: ``certledger serve`` as a real process."""
