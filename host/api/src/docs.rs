//! The human-readable reference, rendered on the server so it works offline: `GET /docs`
//! (every operation of the OpenAPI document grouped by tag, the schemas and every error
//! code) and `GET /docs/wit` (the `pbx:app` WIT contract with its doc comments).
//!
//! Invariants: the pages are self-contained (inline CSS and one small inline script, no
//! link, script or stylesheet to another host); every text taken from the document or the
//! WIT file is HTML-escaped before it is written; both pages are rendered once per process
//! (their sources are compiled in) and need no authentication.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::ApiState;
use crate::error::ERROR_CODES;

/// The app contract, compiled in from the repository's `wit/app.wit`.
pub(crate) const APP_WIT: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/app.wit"));

/// The routes of the documentation, all without authentication.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/openapi.json", get(crate::openapi::openapi_json))
        .route("/docs", get(reference))
        .route("/docs/wit", get(wit_reference))
}

/// The API reference as HTML
///
/// Every operation grouped by tag with its parameters, bodies and answers, the schemas, and
/// every error code; rendered from the OpenAPI document, self-contained.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "service",
    security(()),
    responses((status = 200, description = "The reference page", content_type = "text/html", body = String))
)]
pub(crate) async fn reference() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    html(PAGE.get_or_init(render_reference))
}

/// The app contract (WIT) as HTML
///
/// The `pbx:app` interfaces, types and functions with their doc comments.
#[utoipa::path(
    get,
    path = "/docs/wit",
    operation_id = "docs_wit",
    tag = "service",
    security(()),
    responses((status = 200, description = "The WIT reference page", content_type = "text/html", body = String))
)]
pub(crate) async fn wit_reference() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    html(PAGE.get_or_init(|| render_wit(APP_WIT)))
}

fn html(page: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A little Markdown: paragraphs split on blank lines, `- ` lines as lists, `code` spans.
/// Everything is escaped first.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        let mut in_list = false;
        let mut para: Vec<&str> = Vec::new();
        let flush = |out: &mut String, para: &mut Vec<&str>| {
            if !para.is_empty() {
                let _ = write!(out, "<p>{}</p>", inline(&para.join(" ")));
                para.clear();
            }
        };
        for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(item) = line.strip_prefix("- ") {
                flush(&mut out, &mut para);
                if !in_list {
                    out.push_str("<ul>");
                    in_list = true;
                }
                let _ = write!(out, "<li>{}</li>", inline(item));
            } else {
                if in_list {
                    out.push_str("</ul>");
                    in_list = false;
                }
                para.push(line);
            }
        }
        if in_list {
            out.push_str("</ul>");
        }
        flush(&mut out, &mut para);
    }
    out
}

/// Escapes one line and turns `code` spans into `<code>`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}\
main{max-width:72rem;margin:0 auto;padding:1rem 2rem 4rem}\
nav{background:#f3f5f8;border-bottom:1px solid #d8dee4;padding:.5rem 2rem}\
nav a{margin-right:1rem}\
code,pre{font:13px/1.4 ui-monospace,monospace;background:#f3f5f8;border-radius:3px}\
code{padding:0 .2em}pre{padding:.6rem;overflow-x:auto}\
h2{border-bottom:2px solid #d8dee4;padding-top:1rem}\
.op{border:1px solid #d8dee4;border-radius:6px;margin:1rem 0;padding:.2rem 1rem}\
.op h3{font-size:1rem}\
.m{display:inline-block;min-width:4rem;text-align:center;border-radius:3px;color:#fff;\
font:bold 12px monospace;padding:.2rem .3rem;margin-right:.5rem}\
.get{background:#2f6fdd}.post{background:#1a7f37}.put{background:#9a6700}\
.patch{background:#8250df}.delete{background:#cf222e}\
table{border-collapse:collapse;margin:.5rem 0;width:100%}\
td,th{border:1px solid #d8dee4;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f5f8}.auth{color:#57606a;font-size:13px}\
.kw{color:#8250df;font-weight:bold}dd{margin:0 0 .6rem 1.5rem}dt{margin-top:.4rem}\
#filter{padding:.3rem;width:20rem}";

/// Shows only the operations whose text contains the filter.
const SCRIPT: &str = "document.getElementById('filter').addEventListener('input',function(e){\
var q=e.target.value.toLowerCase();document.querySelectorAll('.op').forEach(function(o){\
o.style.display=o.textContent.toLowerCase().indexOf(q)<0?'none':'';});});";

fn page(title: &str, body: &str, script: bool) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\
         <nav><a href=\"/docs\">API reference</a><a href=\"/docs#error-codes\">Error codes</a>\
         <a href=\"/docs#schemas\">Schemas</a><a href=\"/docs/wit\">App contract (WIT)</a>\
         <a href=\"/v1/openapi.json\">openapi.json</a></nav><main>{body}</main>",
        escape(title)
    );
    if script {
        let _ = write!(out, "<script>{SCRIPT}</script>");
    }
    out.push_str("</body></html>");
    out
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Renders the reference page from the OpenAPI document.
pub(crate) fn render_reference() -> String {
    let doc = serde_json::to_value(crate::openapi::document()).unwrap_or(Value::Null);
    render_reference_from(&doc)
}

fn render_reference_from(doc: &Value) -> String {
    let mut body = String::new();
    let info = &doc["info"];
    let title = info["title"].as_str().unwrap_or("API");
    let _ = write!(
        body,
        "<h1>{} admin API <small>{}</small></h1>{}<p>OpenAPI {}: the machine-readable document \
         is at <a href=\"/v1/openapi.json\"><code>/v1/openapi.json</code></a>. \
         Authenticate with <code>Authorization: Bearer &lt;admin token or API key&gt;</code>.</p>\
         <p><input id=\"filter\" placeholder=\"Filter operations\" aria-label=\"Filter operations\"></p>",
        escape(title),
        escape(info["version"].as_str().unwrap_or("")),
        prose(info["description"].as_str().unwrap_or("")),
        escape(doc["openapi"].as_str().unwrap_or("")),
    );

    // Operations by tag, in the document's tag order, then path order.
    let mut by_tag: BTreeMap<String, Vec<(String, String, &Value)>> = BTreeMap::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(*method) {
                    let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                    by_tag
                        .entry(tag)
                        .or_default()
                        .push((path.clone(), (*method).to_owned(), op));
                }
            }
        }
    }
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or("").to_owned(),
                        t["description"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for tag in by_tag.keys() {
        if !tags.iter().any(|(name, _)| name == tag) {
            tags.push((tag.clone(), String::new()));
        }
    }

    body.push_str("<h2>Contents</h2><ul>");
    for (name, _) in &tags {
        if let Some(ops) = by_tag.get(name) {
            let _ = write!(
                body,
                "<li><a href=\"#tag-{}\">{}</a> ({} operations)</li>",
                slug(name),
                escape(name),
                ops.len()
            );
        }
    }
    body.push_str(
        "<li><a href=\"#error-codes\">Error codes</a></li><li><a href=\"#schemas\">Schemas</a></li>\
         <li><a href=\"/docs/wit\">App contract (WIT)</a></li></ul>",
    );

    for (name, description) in &tags {
        let Some(ops) = by_tag.get(name) else {
            continue;
        };
        let _ = write!(
            body,
            "<section id=\"tag-{}\"><h2>{}</h2>{}",
            slug(name),
            escape(name),
            prose(description)
        );
        for (path, method, op) in ops {
            render_operation(&mut body, path, method, op);
        }
        body.push_str("</section>");
    }

    render_error_codes(&mut body);
    render_schemas(&mut body, doc);
    page(&format!("{title} admin API"), &body, true)
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn render_operation(out: &mut String, path: &str, method: &str, op: &Value) {
    let id = op["operationId"].as_str().unwrap_or("");
    let _ = write!(
        out,
        "<div class=\"op\" id=\"op-{}\"><h3><span class=\"m {method}\">{}</span><code>{}</code> \
         {}</h3>",
        escape(id),
        method.to_ascii_uppercase(),
        escape(path),
        inline(op["summary"].as_str().unwrap_or("")),
    );
    if let Some(description) = op["description"].as_str() {
        out.push_str(&prose(description));
    }
    let secured = op["security"]
        .as_array()
        .is_some_and(|reqs| reqs.iter().any(|r| r.get(crate::openapi::BEARER).is_some()));
    let _ = write!(
        out,
        "<p class=\"auth\">{} · operationId <code>{}</code></p>",
        if secured {
            "Needs <code>Authorization: Bearer</code> (admin token or API key)"
        } else {
            "No authentication"
        },
        escape(id)
    );

    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th>\
             <th>Required</th><th>Description</th></tr>",
        );
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(p["name"].as_str().unwrap_or("")),
                escape(p["in"].as_str().unwrap_or("")),
                type_of(&p["schema"]),
                if p["required"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                },
                prose(p["description"].as_str().unwrap_or("")),
            );
        }
        out.push_str("</table>");
    }

    if let Some(request) = op.get("requestBody") {
        out.push_str("<h4>Request body</h4>");
        if let Some(description) = request["description"].as_str() {
            out.push_str(&prose(description));
        }
        render_content(out, &request["content"]);
    }

    if let Some(responses) = op["responses"].as_object() {
        out.push_str(
            "<h4>Responses</h4><table><tr><th>Status</th><th>Description</th><th>Body</th></tr>",
        );
        for (status, response) in responses {
            let mut content = String::new();
            render_content(&mut content, &response["content"]);
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(status),
                prose(response["description"].as_str().unwrap_or("")),
                content
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div>");
}

/// The media types of a request or response body with their schemas and examples.
fn render_content(out: &mut String, content: &Value) {
    let Some(content) = content.as_object() else {
        return;
    };
    for (media_type, media) in content {
        let _ = write!(
            out,
            "<div><code>{}</code>: {}</div>",
            escape(media_type),
            type_of(&media["schema"])
        );
        if let Some(example) = media.get("example") {
            let text = serde_json::to_string_pretty(example).unwrap_or_default();
            let _ = write!(out, "<pre>{}</pre>", escape(&text));
        }
    }
}

/// A short HTML description of a schema: a link for a reference, else its type.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{}\">{}</a>", escape(name), escape(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[key].as_array() {
            let sep = if key == "allOf" { " &amp; " } else { " | " };
            return parts.iter().map(type_of).collect::<Vec<_>>().join(sep);
        }
    }
    let mut types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let mut text: Vec<String> = Vec::new();
    types.sort_by_key(|t| t == "null");
    for t in types {
        let rendered = match t.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "object" => match schema.get("additionalProperties") {
                Some(Value::Bool(true)) | None => "object".to_owned(),
                Some(Value::Bool(false)) => "object".to_owned(),
                Some(inner) => format!("map of {}", type_of(inner)),
            },
            other => {
                let mut s = escape(other);
                if let Some(format) = schema["format"].as_str().filter(|_| other != "null") {
                    let _ = write!(s, " ({})", escape(format));
                }
                s
            }
        };
        text.push(rendered);
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        let choices = format!("one of {}", values.join(", "));
        return if text.is_empty() {
            choices
        } else {
            format!("{}: {choices}", text.join(" | "))
        };
    }
    if text.is_empty() {
        "any".to_owned()
    } else {
        text.join(" | ")
    }
}

fn render_error_codes(out: &mut String) {
    out.push_str(
        "<section id=\"error-codes\"><h2>Error codes</h2><p>Every error answer is \
         <code>{\"error\": {\"code\", \"message\", \"field\"?}}</code> with a 4xx or 5xx \
         status. Match on <code>code</code>; <code>message</code> is for humans and \
         <code>field</code> names the request field at fault.</p><table><tr><th>Code</th>\
         <th>Status</th><th>Meaning</th></tr>",
    );
    for code in ERROR_CODES {
        let _ = write!(
            out,
            "<tr id=\"error-{}\"><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(code.code),
            escape(code.code),
            escape(code.statuses),
            inline(code.meaning)
        );
    }
    out.push_str("</table></section>");
}

fn render_schemas(out: &mut String, doc: &Value) {
    out.push_str("<section id=\"schemas\"><h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                out,
                "<div class=\"op\" id=\"schema-{}\"><h3>{}</h3>{}",
                escape(name),
                escape(name),
                prose(schema["description"].as_str().unwrap_or(""))
            );
            if let Some(variants) = schema["oneOf"].as_array() {
                out.push_str("<p>One of:</p>");
                for variant in variants {
                    if variant.get("properties").is_some() {
                        out.push_str(&prose(variant["description"].as_str().unwrap_or("")));
                        render_properties(out, variant);
                    } else {
                        let _ = write!(out, "<p>{}</p>", type_of(variant));
                    }
                }
            } else if schema.get("properties").is_some() {
                render_properties(out, schema);
            } else {
                let _ = write!(out, "<p>Type: {}</p>", type_of(schema));
            }
            if let Some(example) = schema.get("example") {
                let text = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = write!(out, "<pre>{}</pre>", escape(&text));
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</section>");
}

/// The fields of an object schema as a table.
fn render_properties(out: &mut String, schema: &Value) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    out.push_str(
        "<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr>",
    );
    for (field, prop) in props {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(field),
            type_of(prop),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                "no"
            },
            prose(prop["description"].as_str().unwrap_or(""))
        );
    }
    out.push_str("</table>");
    if let Some(extra) = schema
        .get("additionalProperties")
        .filter(|v| **v != Value::Bool(false))
    {
        let _ = write!(
            out,
            "<p>Other fields may be present. {}</p>",
            inline(extra["description"].as_str().unwrap_or(""))
        );
    }
}

// ---- WIT --------------------------------------------------------------------------------

/// Keywords that open a block `keyword name {`.
const BLOCKS: &[&str] = &[
    "interface",
    "world",
    "record",
    "variant",
    "enum",
    "flags",
    "resource",
];

/// Renders a WIT file as HTML: each interface and world a section, each type and function
/// an entry with its `///` docs, members of records, variants, enums, flags and resources
/// as a definition list. Line-based: statements are joined until their brackets balance.
pub(crate) fn render_wit(source: &str) -> String {
    let mut body = String::new();
    let mut docs: Vec<String> = Vec::new();
    let mut pending = String::new();
    // The names of the open blocks, outermost first.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut toc: Vec<(String, String)> = Vec::new();

    for raw in source.lines() {
        let line = raw.trim();
        if let Some(doc) = line.strip_prefix("///") {
            docs.push(doc.strip_prefix(' ').unwrap_or(doc).to_owned());
            continue;
        }
        if line.starts_with("//") || (line.is_empty() && pending.is_empty()) {
            if line.is_empty() && !docs.is_empty() {
                docs.push(String::new());
            }
            continue;
        }
        if !pending.is_empty() {
            pending.push(' ');
        }
        pending.push_str(line);
        if !statement_complete(&pending) {
            continue;
        }
        let statement = std::mem::take(&mut pending);
        let doc_text = docs.join("\n");
        docs.clear();
        wit_statement(&mut body, &mut stack, &mut toc, &statement, &doc_text);
    }
    while stack.pop().is_some() {
        body.push_str("</div>");
    }

    let mut page_body = String::from(
        "<h1>The app contract (WIT)</h1><p>Call apps are WebAssembly components built \
         against this contract; the source is <code>wit/app.wit</code> in the repository. \
         The host calls the <code>handlers</code> exports and the app acts through the \
         imports.</p><h2>Contents</h2><ul>",
    );
    for (id, title) in &toc {
        let _ = write!(page_body, "<li><a href=\"#{id}\">{title}</a></li>");
    }
    page_body.push_str("</ul>");
    page_body.push_str(&body);
    page("pbx app contract (WIT)", &page_body, false)
}

/// Whether `text` is a whole WIT statement: brackets balanced and a terminator, or a
/// block opener `keyword name {`, or a block end.
fn statement_complete(text: &str) -> bool {
    let t = text.trim();
    if t.starts_with('}') {
        return true;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if BLOCKS.contains(&first) && t.ends_with('{') {
        return true;
    }
    let mut depth = 0i32;
    for c in t.chars() {
        match c {
            '(' | '<' | '{' => depth += 1,
            ')' | '>' | '}' => depth -= 1,
            _ => {}
        }
    }
    // `->` is not a closing angle bracket.
    depth += i32::try_from(t.matches("->").count()).unwrap_or(0);
    depth <= 0 && (t.ends_with(';') || t.ends_with(','))
}

fn wit_statement(
    out: &mut String,
    stack: &mut Vec<(String, String)>,
    toc: &mut Vec<(String, String)>,
    statement: &str,
    doc: &str,
) {
    let t = statement.trim();
    if t.starts_with('}') {
        if let Some((kind, _)) = stack.pop() {
            out.push_str(if matches!(kind.as_str(), "interface" | "world") {
                "</section>"
            } else {
                "</dl></div>"
            });
        }
        return;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if first == "package" {
        let _ = write!(
            out,
            "<h2><span class=\"kw\">package</span> <code>{}</code></h2>{}",
            escape(t.trim_start_matches("package").trim().trim_end_matches(';')),
            prose(doc)
        );
        return;
    }
    if BLOCKS.contains(&first) && t.ends_with('{') {
        let name = t
            .trim_start_matches(first)
            .trim()
            .trim_end_matches('{')
            .trim()
            .trim_start_matches('%')
            .to_owned();
        let parent = stack.last().map(|(_, n)| n.clone());
        let id = match &parent {
            Some(p) => format!("wit-{}-{}", slug(p), slug(&name)),
            None => format!("wit-{}", slug(&name)),
        };
        if matches!(first, "interface" | "world") && parent.is_none() {
            toc.push((id.clone(), format!("{first} {}", escape(&name))));
            let _ = write!(
                out,
                "<section id=\"{id}\"><h2><span class=\"kw\">{first}</span> <code>{}</code></h2>{}",
                escape(&name),
                prose(doc)
            );
        } else {
            let _ = write!(
                out,
                "<div class=\"op\" id=\"{id}\"><h3><span class=\"kw\">{first}</span> \
                 <code>{}</code></h3>{}<dl>",
                escape(&name),
                prose(doc)
            );
        }
        stack.push((first.to_owned(), name));
        return;
    }
    let inside = stack.last().map(|(k, _)| k.as_str());
    match inside {
        // Members of a record, variant, enum, flags or resource.
        Some("record" | "variant" | "enum" | "flags" | "resource") => {
            let _ = write!(
                out,
                "<dt><code>{}</code></dt><dd>{}</dd>",
                escape(t.trim_end_matches([',', ';'])),
                prose(doc)
            );
        }
        _ => {
            let is_func = t.contains(": func");
            let (kind, name) = if is_func {
                ("func", t.split(':').next().unwrap_or(""))
            } else {
                let name = t.split_whitespace().nth(1).unwrap_or("");
                (first, name.split(['.', ';', '{']).next().unwrap_or(name))
            };
            let name = name.trim().trim_start_matches('%');
            let parent = stack.last().map(|(_, n)| slug(n)).unwrap_or_default();
            let _ = write!(
                out,
                "<div class=\"op\" id=\"wit-{parent}-{}-{}\"><h3><span class=\"kw\">{}</span> \
                 <code>{}</code></h3><pre><code>{}</code></pre>{}</div>",
                slug(kind),
                slug(name),
                escape(kind),
                escape(name),
                escape(t),
                prose(doc)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_inlines() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(inline("use `a<b>` now"), "use <code>a&lt;b&gt;</code> now");
        assert_eq!(
            prose("one\ntwo\n\n- a\n- b"),
            "<p>one two</p><ul><li>a</li><li>b</li></ul>"
        );
    }

    #[test]
    fn wit_statements_join_until_balanced() {
        assert!(!statement_complete("use types.{a, b,"));
        assert!(statement_complete("use types.{a, b, c};"));
        assert!(statement_complete("interface types {"));
        assert!(statement_complete("f: func(a: u32) -> result<_, error>;"));
        assert!(!statement_complete("f: func(a: u32,"));
        assert!(statement_complete("user(string),"));
    }

    #[test]
    fn wit_renders_docs_and_escapes() {
        let html = render_wit(
            "/// The package.\npackage a:b@1.0.0;\n\n/// Types.\ninterface types {\n    \
             /// A leg.\n    record leg {\n        /// Its id.\n        id: string,\n    }\n    \
             /// Speaks.\n    say: func(text: string) -> result<u64, error>;\n}\n",
        );
        assert!(html.contains("id=\"wit-types\""));
        assert!(html.contains("<code>leg</code>"));
        assert!(html.contains("Its id."));
        assert!(html.contains("result&lt;u64, error&gt;"));
        assert!(html.contains("Speaks."));
        assert!(!html.contains("result<u64"));
    }

    #[test]
    fn the_real_wit_renders() {
        let html = render_wit(APP_WIT);
        assert!(!html.contains("result<_"));
        assert!(html.contains("result&lt;_, error&gt;"));
        assert!(html.contains("on-call-received"));
        assert!(html.contains("id=\"wit-handlers\""));
    }
}
