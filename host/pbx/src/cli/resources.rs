//! `pbx numbers` and `pbx calls`: tables over the admin API's lists, number routing, and
//! the call list's `--follow` mode over the event stream.
//!
//! Invariant: a table never fails on an answer missing a field; the cell is left empty (or
//! `-`), so a newer server with more or fewer fields still prints.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::app::{items, resolve_app};
use super::client::Api;
use super::events::{self, Filter};
use super::{CallsArgs, CliError, NumbersAction, NumbersArgs, Table};

/// The string field `key` of `value` (a number is printed), or empty.
pub(crate) fn str_of(value: &Value, key: &str) -> String {
    opt_str(value, key).unwrap_or_default()
}

/// The field `key` of `value` as text, when it is a string, number or boolean.
pub(crate) fn opt_str(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An RFC 3339 timestamp as local `YYYY-MM-DD HH:MM:SS`; anything else as it is.
pub(crate) fn format_time(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(time) => time
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            Err(_) => text.clone(),
        },
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// App ids to names, for friendlier tables; empty when the list cannot be read.
async fn app_names(api: &Api) -> HashMap<String, String> {
    let Ok(apps) = api.get(api.url(&["v1", "apps"], &[])).await else {
        return HashMap::new();
    };
    items(&apps, "apps")
        .iter()
        .map(|a| (str_of(a, "id"), str_of(a, "name")))
        .collect()
}

/// `pbx numbers [set NUMBER APP | delete NUMBER]`.
pub(crate) async fn numbers(args: NumbersArgs) -> Result<(), CliError> {
    match args.action {
        None => list_numbers(&Api::connect(&args.conn)?, args.json).await,
        Some(NumbersAction::Set { number, app, conn }) => {
            let api = Api::connect(&conn)?;
            let app = resolve_app(&api, &app).await?;
            let app_id = str_of(&app, "id");
            api.send(
                Method::PUT,
                api.url(&["v1", "numbers", &number], &[]),
                Some(&json!({ "app_id": app_id })),
            )
            .await?;
            println!("number {number} → app {} ({app_id})", str_of(&app, "name"));
            Ok(())
        }
        Some(NumbersAction::Delete { number, conn }) => {
            let api = Api::connect(&conn)?;
            api.send(
                Method::DELETE,
                api.url(&["v1", "numbers", &number], &[]),
                None,
            )
            .await?;
            println!("number {number} is no longer routed");
            Ok(())
        }
    }
}

/// The numbers table.
async fn list_numbers(api: &Api, json: bool) -> Result<(), CliError> {
    let answer = api.get(api.url(&["v1", "numbers"], &[])).await?;
    if json {
        println!("{answer:#}");
        return Ok(());
    }
    let names = app_names(api).await;
    let mut table = Table::new(&["NUMBER", "APP", "APP ID", "UPDATED"]);
    for number in items(&answer, "numbers") {
        let app_id = str_of(number, "app_id");
        table.row([
            str_of(number, "number"),
            names.get(&app_id).cloned().unwrap_or_default(),
            app_id,
            format_time(number.get("updated_at")),
        ]);
    }
    table.print_or("no numbers are routed; add one with `pbx numbers set NUMBER APP`");
    Ok(())
}

/// `pbx calls [--history [--limit N] | --follow]`.
pub(crate) async fn calls(args: CallsArgs) -> Result<(), CliError> {
    let api = Api::connect(&args.conn)?;
    if args.follow {
        let filter = Filter {
            type_prefix: Some("CALL_".into()),
            ..Filter::default()
        };
        return events::follow(&api, &filter, args.json).await;
    }
    let limit = args.limit.to_string();
    let url = if args.history {
        api.url(&["v1", "calls", "history"], &[("limit", &limit)])
    } else {
        api.url(&["v1", "calls"], &[])
    };
    let answer = api.get(url).await?;
    if args.json {
        println!("{answer:#}");
        return Ok(());
    }
    let names = app_names(&api).await;
    let app_name = |call: &Value| {
        let id = str_of(call, "app_id");
        names.get(&id).cloned().unwrap_or(id)
    };
    if args.history {
        let mut table = Table::new(&[
            "ID", "FROM", "TO", "APP", "STATUS", "ENDED BY", "REASON", "STARTED",
        ]);
        for call in items(&answer, "calls") {
            table.row([
                str_of(call, "id"),
                str_of(call, "from"),
                str_of(call, "to"),
                app_name(call),
                str_of(call, "status"),
                str_of(call, "hangup_by"),
                str_of(call, "hangup_reason"),
                format_time(call.get("tm_create")),
            ]);
        }
        table.print_or("no finished calls");
    } else {
        let mut table = Table::new(&["ID", "FROM", "TO", "APP", "STATUS", "STARTED"]);
        for call in items(&answer, "calls") {
            table.row([
                str_of(call, "id"),
                str_of(call, "from"),
                str_of(call, "to"),
                app_name(call),
                str_of(call, "status"),
                format_time(call.get("tm_create")),
            ]);
        }
        table.print_or("no live calls");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_times() {
        let v = json!({"s": "x", "n": 3, "b": true, "o": {}});
        assert_eq!(str_of(&v, "s"), "x");
        assert_eq!(str_of(&v, "n"), "3");
        assert_eq!(str_of(&v, "b"), "true");
        assert_eq!(str_of(&v, "o"), "");
        assert_eq!(str_of(&v, "missing"), "");
        let t = format_time(Some(&json!("2024-05-01T12:00:03Z")));
        assert_eq!(t.len(), "2024-05-01 12:00:03".len(), "{t}");
        assert_eq!(format_time(Some(&json!("soon"))), "soon");
        assert_eq!(format_time(None), "");
    }
}
