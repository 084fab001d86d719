//! Small helpers for the few hand-written statements (joins on the hot paths).

use sea_orm::{DbBackend, Iterable, Statement, Value};

/// Builds a statement written with `$1`-style placeholders for either backend.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let text = match backend {
        // SQLite reads `?1` as "parameter 1", the same numbering as PostgreSQL's `$1`.
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, text, values)
}

/// `alias.col AS prefixcol, ...` for every column of an entity, so that a joined row can be
/// decoded with the entity's `FromQueryResult` under a prefix.
pub(crate) fn prefixed_columns<C>(alias: &str, prefix: &str) -> String
where
    C: Iterable + sea_orm::IdenStatic,
{
    C::iter()
        .map(|c| {
            let name = c.as_str();
            format!("{alias}.{name} AS {prefix}{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
