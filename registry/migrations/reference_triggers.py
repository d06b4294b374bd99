"""PostgreSQL: a credential's references to its issuer and batch are checked once per statement

A declared foreign key is checked by a per-row trigger: PostgreSQL runs one locking query against
the parent table for every credential row, and the two keys of ``credentials``
(``issuer_org_id`` -> organisations, ``batch_id`` -> batches) took 34-38 us of server CPU per row
of a 10,000-row COPY, against 17-20 us without them: about a third of the database's share of
issuing a credential. On PostgreSQL the two constraints are replaced by triggers that give the
same guarantee with one query per statement:

- after an INSERT or UPDATE of credentials, the distinct issuers and batches the statement's new
  rows name (its transition table) are locked ``FOR KEY SHARE``, as the foreign key's own check
  locks them, and a statement naming one that is missing fails with SQLSTATE 23503
  (foreign_key_violation), the error a foreign key raises. The lock makes a concurrent delete of
  that parent wait for this transaction and then fail; a parent deleted by a concurrent
  transaction that commits first is not returned by the locking query, so the insert fails;
- after a DELETE of a batch or an organisation, or an UPDATE of its id, the statement fails if a
  credential still names the old id (the check runs with a fresh snapshot, so it sees the rows of
  any transaction it waited for); a TRUNCATE of either fails if credentials still name one.

Other tables keep their declared foreign keys, and SQLite keeps both of these (it checks a foreign
key without a query per row). The models still declare the two keys: the migrations check skips
exactly these two on PostgreSQL (``registry.db.models.TRIGGER_CHECKED_KEYS``), and the tests show
the triggers refuse what the keys refused.

The SQL lives here, not in a migration, so the baseline migration installs it and
``scripts/bench_fk_triggers.py`` can swap it for the foreign keys to measure what it saves.
"""

from __future__ import annotations

from alembic import op


def _parent_present(column: str, parent: str, nullable: bool = False) -> str:
    """PL/pgSQL: lock FOR KEY SHARE the `parent` rows the statement's new rows name in `column`;
    raise foreign_key_violation, as the key did, if one is missing."""
    named = f"SELECT DISTINCT {column} AS id FROM new_rows" + (
        f" WHERE {column} IS NOT NULL" if nullable else ""
    )
    return f"""
    SELECT r.id INTO missing FROM ({named}) r
     WHERE NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = r.id FOR KEY SHARE) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "credentials" violates foreign key "credentials_{column}_fkey"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'credentials',
                  CONSTRAINT = 'credentials_{column}_fkey',
                  DETAIL = format('Key ({column})=(%s) is not present in table "{parent}".', missing);
    END IF;"""


CHILD_CHECK = f"""
CREATE FUNCTION certledger_credentials_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN{_parent_present("issuer_org_id", "organisations")}{_parent_present("batch_id", "batches", nullable=True)}
    RETURN NULL;
END $$
"""

PARENT_CHECK = """
CREATE FUNCTION certledger_credentials_parent_gone() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    still_named boolean;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id = OLD.id THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_TABLE_NAME = 'batches' THEN
        still_named := EXISTS (SELECT 1 FROM credentials c WHERE c.batch_id = OLD.id)
                       AND NOT EXISTS (SELECT 1 FROM batches p WHERE p.id = OLD.id);
    ELSE
        still_named := EXISTS (SELECT 1 FROM credentials c WHERE c.issuer_org_id = OLD.id)
                       AND NOT EXISTS (SELECT 1 FROM organisations p WHERE p.id = OLD.id);
    END IF;
    IF still_named THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key "credentials_%_fkey" '
                        'on table "credentials"',
                TG_TABLE_NAME, CASE TG_TABLE_NAME WHEN 'batches' THEN 'batch_id' ELSE 'issuer_org_id' END
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  DETAIL = format('Key (id)=(%s) is still referenced from table "credentials".', OLD.id);
    END IF;
    RETURN NULL;
END $$
"""

PARENT_TRUNCATE = """
CREATE FUNCTION certledger_credentials_parent_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_TABLE_NAME = 'batches' AND EXISTS (SELECT 1 FROM credentials WHERE batch_id IS NOT NULL))
       OR (TG_TABLE_NAME = 'organisations' AND EXISTS (SELECT 1 FROM credentials)) THEN
        RAISE EXCEPTION 'cannot truncate table "%": table "credentials" still refers to it', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$
"""

TRIGGERS = [
    (
        "credentials_references_insert",
        "credentials",
        "AFTER INSERT ON credentials REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION certledger_credentials_references()",
    ),
    (
        "credentials_references_update",
        "credentials",
        "AFTER UPDATE ON credentials REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION certledger_credentials_references()",
    ),
    (
        "credentials_batch_gone",
        "batches",
        "AFTER DELETE OR UPDATE OF id ON batches FOR EACH ROW EXECUTE FUNCTION certledger_credentials_parent_gone()",
    ),
    (
        "credentials_issuer_gone",
        "organisations",
        "AFTER DELETE OR UPDATE OF id ON organisations FOR EACH ROW "
        "EXECUTE FUNCTION certledger_credentials_parent_gone()",
    ),
    (
        "credentials_batches_truncated",
        "batches",
        "AFTER TRUNCATE ON batches FOR EACH STATEMENT EXECUTE FUNCTION certledger_credentials_parent_truncated()",
    ),
    (
        "credentials_issuers_truncated",
        "organisations",
        "AFTER TRUNCATE ON organisations FOR EACH STATEMENT EXECUTE FUNCTION certledger_credentials_parent_truncated()",
    ),
]
FUNCTIONS = (
    "certledger_credentials_references",
    "certledger_credentials_parent_gone",
    "certledger_credentials_parent_truncated",
)


def install() -> None:
    """Replace the two foreign keys of ``credentials`` by the triggers (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("credentials_issuer_org_id_fkey", "credentials", type_="foreignkey")
    op.drop_constraint("credentials_batch_id_fkey", "credentials", type_="foreignkey")
    for sql in (CHILD_CHECK, PARENT_CHECK, PARENT_TRUNCATE):
        op.execute(sql)
    for name, _table, spec in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {spec}")


def remove() -> None:
    """Put the foreign keys back (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _spec in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION {fn}()")
    op.create_foreign_key(
        "credentials_issuer_org_id_fkey", "credentials", "organisations", ["issuer_org_id"], ["id"]
    )
    op.create_foreign_key("credentials_batch_id_fkey", "credentials", "batches", ["batch_id"], ["id"])
