//! Column and foreign-key builders shared by the migrations: every column states its
//! nullability, and the same builders keep SQLite and PostgreSQL schemas alike.

use sea_orm_migration::prelude::*;

pub(crate) fn uuid_pk<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().primary_key().take()
}

pub(crate) fn uuid<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().take()
}

pub(crate) fn uuid_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).uuid().null().take()
}

pub(crate) fn text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).text().not_null().take()
}

pub(crate) fn text_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).text().null().take()
}

pub(crate) fn boolean<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().take()
}

pub(crate) fn ts<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

pub(crate) fn ts_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().null().take()
}

/// Inline FK with the given ON DELETE action. Declared inside CREATE TABLE because
/// SQLite cannot add foreign keys to an existing table.
fn fk<F, C, T, R>(
    name: &str,
    from: F,
    from_col: C,
    to: T,
    to_col: R,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement
where
    F: IntoTableRef,
    C: IntoIden,
    T: IntoTableRef,
    R: IntoIden,
{
    ForeignKey::create()
        .name(name)
        .from(from, from_col)
        .to(to, to_col)
        .on_delete(on_delete)
        .take()
}

/// Inline FK with ON DELETE CASCADE.
pub(crate) fn cascade_fk<F, C, T, R>(
    name: &str,
    from: F,
    from_col: C,
    to: T,
    to_col: R,
) -> ForeignKeyCreateStatement
where
    F: IntoTableRef,
    C: IntoIden,
    T: IntoTableRef,
    R: IntoIden,
{
    fk(name, from, from_col, to, to_col, ForeignKeyAction::Cascade)
}

/// Inline FK with ON DELETE SET NULL, for rows that must outlive the row they point at.
pub(crate) fn set_null_fk<F, C, T, R>(
    name: &str,
    from: F,
    from_col: C,
    to: T,
    to_col: R,
) -> ForeignKeyCreateStatement
where
    F: IntoTableRef,
    C: IntoIden,
    T: IntoTableRef,
    R: IntoIden,
{
    fk(name, from, from_col, to, to_col, ForeignKeyAction::SetNull)
}
