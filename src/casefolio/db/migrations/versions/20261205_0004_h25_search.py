"""full-text search (h25): extracted text per version and its index

On SQLite an FTS5 external-content table over `version_texts.text`, kept in step by
triggers; on PostgreSQL a generated `tsvector` column with a GIN index, under a text search
configuration of its own (`casefolio_search`: no stemming, accents removed where the
`unaccent` extension is available). Both split text into the same words: runs of letters
and digits (search/query.py tokenises queries alike). Every version that exists now is
queued (status pending) for the worker to extract."""

import sqlalchemy as sa
from alembic import op

revision = "0004_h25"
# After legal holds (0004_h27), which landed first.
down_revision = "0004_h27"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE = [
    """CREATE VIRTUAL TABLE version_texts_fts USING fts5(
        text, content='version_texts', content_rowid='version_id',
        tokenize="unicode61 remove_diacritics 2")""",
    """CREATE TRIGGER version_texts_fts_insert AFTER INSERT ON version_texts BEGIN
        INSERT INTO version_texts_fts(rowid, text) VALUES (new.version_id, new.text);
    END""",
    """CREATE TRIGGER version_texts_fts_delete AFTER DELETE ON version_texts BEGIN
        INSERT INTO version_texts_fts(version_texts_fts, rowid, text)
        VALUES ('delete', old.version_id, old.text);
    END""",
    """CREATE TRIGGER version_texts_fts_update AFTER UPDATE OF text ON version_texts BEGIN
        INSERT INTO version_texts_fts(version_texts_fts, rowid, text)
        VALUES ('delete', old.version_id, old.text);
        INSERT INTO version_texts_fts(rowid, text) VALUES (new.version_id, new.text);
    END""",
]
_WORD_TYPES = "word, hword, hword_part, numword, numhword, hword_numpart"


def upgrade() -> None:
    op.create_table(
        "version_texts",
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("extracted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["document_versions.id"],
            name="fk_version_texts_version_id_document_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", name="pk_version_texts"),
    )
    op.create_index("ix_version_texts_status", "version_texts", ["status", "claimed_until"])
    op.create_index("ix_documents_current_version", "documents", ["current_version_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        has_unaccent = bind.scalar(
            sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'unaccent'")
        )
        op.execute("CREATE TEXT SEARCH CONFIGURATION casefolio_search (COPY = pg_catalog.simple)")
        if has_unaccent:
            op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
            op.execute(
                f"ALTER TEXT SEARCH CONFIGURATION casefolio_search ALTER MAPPING FOR "
                f"{_WORD_TYPES} WITH unaccent, simple"
            )
        op.execute(
            "ALTER TABLE version_texts ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('casefolio_search'::regconfig, "
            "regexp_replace(coalesce(text, ''), '[^[:alnum:]]+', ' ', 'g'))) STORED"
        )
        op.execute("CREATE INDEX ix_version_texts_tsv ON version_texts USING gin (tsv)")
    else:
        for statement in _SQLITE:
            op.execute(statement)
    # What exists now waits for the worker; the worker's position in the outbox starts here.
    op.execute(
        "INSERT INTO version_texts (version_id, status, attempts) "
        "SELECT id, 'pending', 0 FROM document_versions WHERE document_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO outbound_state (name, value) "
        "SELECT 'search.queued', coalesce(max(seq), 0) FROM changes"
    )


def downgrade() -> None:
    op.execute("DELETE FROM outbound_state WHERE name = 'search.queued'")
    op.drop_index("ix_documents_current_version", table_name="documents")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("version_texts")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS casefolio_search")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS version_texts_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS version_texts_fts")
        op.drop_index("ix_version_texts_status", table_name="version_texts")
        op.drop_table("version_texts")
