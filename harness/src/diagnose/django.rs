//! Django's own words for the mistakes its students make most, read from the answer and the log: tables
//! that do not exist because migrations were never applied, a host name missing from ALLOWED_HOSTS. Each
//! is said once, with what to change. (A CSRF refusal is `csrf.rs`'s: it knows what the request carried.)

/// Why Django answered `status`, when its body or log says; `log_since` is what it logged while answering,
/// `whole_log` everything it logged (a startup warning is printed long before the request).
pub fn explain(server: &str, status: u16, body: &str, log_since: &str, whole_log: &str) -> Option<String> {
    let said = |text: &str| body.contains(text) || log_since.contains(text);
    if status >= 500 {
        let missing_table = said("no such table") || (said("relation \"") && said("does not exist"));
        if let Some(line) = whole_log.lines().find(|l| l.contains("unapplied migration")) {
            return Some(format!(
                "Django in `{server}` said at start: `{}` The database was never migrated: run `python manage.py \
                 migrate` before the server starts (in the container's command or entrypoint, e.g. `sh -c \"python \
                 manage.py migrate && python manage.py runserver 0.0.0.0:8000\"`)",
                line.trim()
            ));
        }
        if missing_table {
            return Some(format!(
                "the server in `{server}` queried a table that does not exist: were the migrations applied \
                 (`python manage.py migrate`) in this container, on the database it uses, before the server started?"
            ));
        }
    }
    if status == 400 && said("Invalid HTTP_HOST header") {
        return Some(format!(
            "Django in `{server}` refuses the host name the request used: add it (here `127.0.0.1` or `localhost`) \
             to ALLOWED_HOSTS in settings.py"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn unapplied_migrations_are_named_from_the_startup_warning() {
        let whole = "Watching for file changes\nYou have 1 unapplied migration(s). Your project may not work properly until you apply the migrations for app(s): notes.\n";
        let said = explain("web", 500, "", "sqlite3.OperationalError: no such table: notes_note", whole).unwrap();
        assert!(said.contains("You have 1 unapplied migration(s)") && said.contains("manage.py migrate"), "{said}");
        let said = explain("web", 500, "", "django.db.utils.OperationalError: no such table: notes_note", "").unwrap();
        assert!(said.contains("does not exist"), "{said}");
    }
}
