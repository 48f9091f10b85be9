-- Seed: the leading words bureaus use for a creditor, mapped to one creditor (sql/seeds/creditor_aliases.csv).
CREATE TABLE IF NOT EXISTS ops.creditor_aliases (
    alias    VARCHAR(128) NOT NULL,
    creditor VARCHAR(128) NOT NULL,
    PRIMARY KEY (alias)
) DISTSTYLE ALL SORTKEY (alias)
