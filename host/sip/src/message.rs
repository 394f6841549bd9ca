//! SIP messages behind our own types: parsing, header access and printing.
//!
//! `parse` is strict about framing (RFC 3261 §7): start line, CRLF header lines with folding,
//! one Content-Length (a UDP datagram without one carries the rest as body, §18.3), and a UTF-8
//! header section. Extension methods and unknown headers are kept. Header values are stored
//! unfolded and trimmed; typed views (`header.rs`) are parsed on demand. `to_bytes` always
//! writes a Content-Length that matches the body. Nothing here panics on any input.

use std::fmt;

use thiserror::Error;

use crate::header::{CSeq, HeaderError, Method, NameAddr, Uri, Via, is_token_byte, media_type};

/// Largest message the core accepts (UDP datagrams and framed TCP messages alike).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Why bytes are not a well-formed SIP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Over [`MAX_MESSAGE_SIZE`].
    #[error("message too large")]
    TooLarge,
    /// No empty line ends the header section.
    #[error("no empty line ends the header section")]
    Incomplete,
    /// The start line or a header line is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// The Request-Line or Status-Line does not follow the grammar.
    #[error("malformed start line")]
    StartLine,
    /// The Request-URI does not parse.
    #[error("malformed Request-URI: {0}")]
    RequestUri(HeaderError),
    /// A SIP version other than 2.0.
    #[error("unsupported SIP version")]
    Version,
    /// A status code outside 100-699.
    #[error("malformed status code")]
    Status,
    /// A header line without a name or colon, or a continuation with nothing to continue.
    #[error("malformed header line")]
    HeaderLine,
    /// Content-Length is not a non-negative integer.
    #[error("malformed Content-Length")]
    ContentLength,
    /// More than one Content-Length field.
    #[error("multiple Content-Length header fields")]
    MultipleContentLength,
    /// The body is shorter than Content-Length says.
    #[error("body shorter than Content-Length")]
    Truncated,
}

impl ParseError {
    /// The status a UAS answers a request with this defect (RFC 3261 §8.2, §18.3; RFC 4475 §3.1.2).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version => 505,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }

    /// A reason phrase that says what is wrong.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::TooLarge => "Message Too Large",
            ParseError::Incomplete => "Incomplete Message",
            ParseError::NotUtf8 => "Header Section Not UTF-8",
            ParseError::StartLine => "Malformed Request-Line",
            ParseError::RequestUri(_) => "Malformed Request-URI",
            ParseError::Version => "Version Not Supported",
            ParseError::Status => "Malformed Status-Line",
            ParseError::HeaderLine => "Malformed Header Line",
            ParseError::ContentLength => "Malformed Content-Length",
            ParseError::MultipleContentLength => "Multiple Content-Length Headers",
            ParseError::Truncated => "Body Shorter Than Content-Length",
        }
    }
}

/// Full names with their compact forms (RFC 3261 §7.3.3 and later RFCs); lookups use the full name.
const NAMES: &[(&str, Option<u8>)] = &[
    ("Accept", None),
    ("Accept-Contact", Some(b'a')),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Alert-Info", None),
    ("Allow", None),
    ("Allow-Events", Some(b'u')),
    ("Authorization", None),
    ("Call-ID", Some(b'i')),
    ("Call-Info", None),
    ("Contact", Some(b'm')),
    ("Content-Disposition", None),
    ("Content-Encoding", Some(b'e')),
    ("Content-Language", None),
    ("Content-Length", Some(b'l')),
    ("Content-Type", Some(b'c')),
    ("CSeq", None),
    ("Date", None),
    ("Error-Info", None),
    ("Event", Some(b'o')),
    ("Expires", None),
    ("From", Some(b'f')),
    ("Identity", Some(b'y')),
    ("In-Reply-To", None),
    ("Max-Forwards", None),
    ("MIME-Version", None),
    ("Min-Expires", None),
    ("Organization", None),
    ("Priority", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Proxy-Require", None),
    ("RAck", None),
    ("Reason", None),
    ("Record-Route", None),
    ("Refer-To", Some(b'r')),
    ("Referred-By", Some(b'b')),
    ("Reject-Contact", Some(b'j')),
    ("Reply-To", None),
    ("Request-Disposition", Some(b'd')),
    ("Require", None),
    ("Retry-After", None),
    ("Route", None),
    ("RSeq", None),
    ("Server", None),
    ("Session-Expires", Some(b'x')),
    ("Subject", Some(b's')),
    ("Supported", Some(b'k')),
    ("Timestamp", None),
    ("To", Some(b't')),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Via", Some(b'v')),
    ("Warning", None),
    ("WWW-Authenticate", None),
];

/// The canonical full name of a known header (compact forms included), case-insensitively.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.len() == 1 {
        let c = b[0].to_ascii_lowercase();
        // Through the full name, so each known name has exactly one `&'static str` (`Name::matches`
        // compares pointers).
        return NAMES
            .iter()
            .find(|(_, compact)| *compact == Some(c))
            .and_then(|(full, _)| canonical_name(full));
    }
    // Grouped by length so a lookup compares against a handful of names; `names_are_grouped`
    // keeps this in step with NAMES.
    let candidates: &[&'static str] = match b.len() {
        2 => &["To"],
        3 => &["Via"],
        4 => &["From", "CSeq", "Date", "RAck", "RSeq"],
        5 => &["Allow", "Event", "Route"],
        6 => &["Accept", "Server", "Reason"],
        7 => &[
            "Call-ID", "Contact", "Expires", "Require", "Subject", "Warning",
        ],
        8 => &["Identity", "Priority", "Refer-To", "Reply-To"],
        9 => &["Call-Info", "Supported", "Timestamp"],
        10 => &["Alert-Info", "Error-Info", "User-Agent"],
        11 => &[
            "In-Reply-To",
            "Min-Expires",
            "Referred-By",
            "Retry-After",
            "Unsupported",
        ],
        12 => &[
            "Allow-Events",
            "Content-Type",
            "Max-Forwards",
            "MIME-Version",
            "Organization",
            "Record-Route",
        ],
        13 => &["Authorization", "Proxy-Require"],
        14 => &["Accept-Contact", "Content-Length", "Reject-Contact"],
        15 => &["Accept-Encoding", "Accept-Language", "Session-Expires"],
        16 => &["Content-Encoding", "Content-Language", "WWW-Authenticate"],
        18 => &["Proxy-Authenticate"],
        19 => &[
            "Content-Disposition",
            "Proxy-Authorization",
            "Request-Disposition",
        ],
        _ => &[],
    };
    candidates
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(name))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Known(&'static str),
    Other(Box<str>),
}

impl Name {
    fn new(name: &str) -> Name {
        canonical_name(name).map_or_else(|| Name::Other(name.into()), Name::Known)
    }

    fn as_str(&self) -> &str {
        match self {
            Name::Known(s) => s,
            Name::Other(s) => s,
        }
    }

    fn matches(&self, other: &Name) -> bool {
        match (self, other) {
            // canonical_name hands out one static string per name.
            (Name::Known(a), Name::Known(b)) => std::ptr::eq(*a, *b),
            (Name::Other(a), Name::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Field {
    name: Name,
    /// The value's byte range in `Headers::buf`.
    start: usize,
    end: usize,
}

/// The header fields of a message in order; names compare case-insensitively and compact
/// forms (`v`, `i`, `f`, `t`, `m`, `l`, `c`, `k`, `s`, ...) equal their full names.
///
/// Values live in one buffer (one allocation per message, not per field); replaced values are
/// appended, so the buffer only grows while the message lives.
#[derive(Clone, Default)]
pub struct Headers {
    buf: String,
    fields: Vec<Field>,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Headers {
    /// No fields.
    pub fn new() -> Headers {
        Headers::default()
    }

    fn store(&mut self, value: &str) -> (usize, usize) {
        let start = self.buf.len();
        self.buf.push_str(value);
        (start, self.buf.len())
    }

    fn value(&self, f: &Field) -> &str {
        self.buf.get(f.start..f.end).unwrap_or("")
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: impl AsRef<str>) {
        let (start, end) = self.store(value.as_ref());
        self.fields.push(Field {
            name: Name::new(name),
            start,
            end,
        });
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of a field, in order (one per header line; a line may hold a comma list).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = Name::new(name);
        self.fields
            .iter()
            .filter(move |f| f.name.matches(&name))
            .map(|f| self.value(f))
    }

    /// How many lines carry a field.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Whether a field is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every line of a field.
    pub fn remove(&mut self, name: &str) {
        let name = Name::new(name);
        self.fields.retain(|f| !f.name.matches(&name));
    }

    /// Replaces every line of a field with one value, at the first line's position.
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        let n = Name::new(name);
        match self.fields.iter().position(|f| f.name.matches(&n)) {
            Some(i) => {
                let (start, end) = self.store(value.as_ref());
                self.fields[i].start = start;
                self.fields[i].end = end;
                let mut seen = false;
                self.fields.retain(|f| {
                    if f.name.matches(&n) {
                        let keep = !seen;
                        seen = true;
                        keep
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Replaces the value of the first line of a field; no-op when absent.
    pub fn replace_first(&mut self, name: &str, value: impl AsRef<str>) {
        let n = Name::new(name);
        if let Some(i) = self.fields.iter().position(|f| f.name.matches(&n)) {
            let (start, end) = self.store(value.as_ref());
            self.fields[i].start = start;
            self.fields[i].end = end;
        }
    }

    /// All fields as (name, value); known names in their full canonical form.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|f| (f.name.as_str(), self.value(f)))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Call-ID, trimmed.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    /// CSeq, parsed.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.get("CSeq").ok_or(HeaderError("missing"))?)
    }

    /// From, parsed.
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.get("From").ok_or(HeaderError("missing"))?)
    }

    /// To, parsed.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.get("To").ok_or(HeaderError("missing"))?)
    }

    /// The top Via entry, parsed: the previous hop.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        Via::parse_first(self.get("Via").ok_or(HeaderError("missing"))?).map(|(v, _)| v)
    }

    /// Every Via entry across all Via lines, in order.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Via") {
            out.extend(Via::parse_list(v)?);
        }
        Ok(out)
    }

    /// The first Contact address, if any.
    pub fn contact(&self) -> Result<Option<NameAddr>, HeaderError> {
        match self.get("Contact") {
            None => Ok(None),
            Some(v) if v.trim() == "*" => Err(HeaderError("wildcard contact")),
            Some(v) => Ok(NameAddr::parse_list(v)?.into_iter().next()),
        }
    }

    /// Max-Forwards (0-255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        match self.get("Max-Forwards") {
            None => Ok(None),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u32>()
                .ok()
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or(HeaderError("out of range")),
            Some(_) => Err(HeaderError("not a number")),
        }
    }

    /// The Content-Type media type, lower-cased without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.get("Content-Type").map(media_type)
    }

    /// Every Record-Route entry in order (RFC 3261 §12.1.1 builds the route set from them).
    pub fn record_route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Record-Route") {
            out.extend(NameAddr::parse_list(v)?);
        }
        Ok(out)
    }

    fn write_to(&self, out: &mut Vec<u8>, body_len: usize) {
        for f in &self.fields {
            if matches!(f.name, Name::Known("Content-Length")) {
                continue;
            }
            out.extend_from_slice(f.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.value(f).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {body_len}\r\n\r\n").as_bytes());
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method of the Request-Line.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Header fields.
    pub headers: Headers,
    /// The body (Content-Length is derived from it when printing).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100-699.
    pub status: u16,
    /// Reason phrase as received or to be sent (may be empty).
    pub reason: String,
    /// Header fields.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A parsed message: either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Request {
    /// An empty request; callers add headers and a body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The wire form, with a Content-Length matching the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        out
    }

    /// Sets the body and its Content-Type (or removes both when `body` is empty).
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }
}

impl Response {
    /// A response with no headers; see `builder::response_to` for one that answers a request.
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The wire form, with a Content-Length matching the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        out
    }

    /// Sets the body and its Content-Type (or removes both when `body` is empty).
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }

    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn set_body(headers: &mut Headers, slot: &mut Vec<u8>, content_type: &str, body: Vec<u8>) {
    if body.is_empty() {
        headers.remove("Content-Type");
    } else {
        headers.set("Content-Type", content_type);
    }
    *slot = body;
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl SipMessage {
    /// The header fields of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}

/// How strictly to read a message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    /// Best effort to answer a broken request with 400: loose start line, bad lines skipped.
    Recover,
}

/// Parses one message (a UDP datagram or a framed TCP message). Bytes past Content-Length are
/// ignored (RFC 3261 §18.3, RFC 4475 `dblreq`).
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    parse_with(bytes, Mode::Strict)
}

/// Recovers enough of a malformed request to answer it: loose start line, malformed header
/// lines skipped, no body. `None` when it does not even look like a request.
pub fn recover_request(bytes: &[u8]) -> Option<Request> {
    match parse_with(bytes, Mode::Recover) {
        Ok(SipMessage::Request(r)) => Some(r),
        _ => None,
    }
}

fn parse_with(bytes: &[u8], mode: Mode) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    let head_end = find(bytes, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
    let head = match std::str::from_utf8(&bytes[..head_end]) {
        Ok(h) => h,
        Err(_) if mode == Mode::Recover => {
            // Keep the valid prefix; a 400 only needs the routing headers.
            let valid = std::str::from_utf8(&bytes[..head_end])
                .map_err(|e| e.valid_up_to())
                .err()
                .unwrap_or(0);
            std::str::from_utf8(&bytes[..valid]).map_err(|_| ParseError::NotUtf8)?
        }
        Err(_) => return Err(ParseError::NotUtf8),
    };
    let (start, header_lines) = head.split_once("\r\n").unwrap_or((head, ""));
    let start = parse_start_line(start, mode)?;
    let headers = parse_headers(header_lines, mode)?;
    let body_start = head_end + 4;
    let available = &bytes[body_start.min(bytes.len())..];
    let body = match mode {
        Mode::Recover => Vec::new(),
        Mode::Strict => {
            let mut lengths = headers.get_all("Content-Length");
            match (lengths.next(), lengths.next()) {
                (None, _) => available.to_vec(),
                (Some(_), Some(_)) => return Err(ParseError::MultipleContentLength),
                (Some(v), None) => {
                    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(ParseError::ContentLength);
                    }
                    let n: usize = v.parse().map_err(|_| ParseError::ContentLength)?;
                    available.get(..n).ok_or(ParseError::Truncated)?.to_vec()
                }
            }
        }
    };
    Ok(match start {
        StartLine::Request(method, uri) => SipMessage::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response(status, reason) => SipMessage::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(start: &str, mode: Mode) -> Result<StartLine, ParseError> {
    if let Some(rest) = start.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::StartLine)?;
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Status);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::Status)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::Status);
        }
        return Ok(StartLine::Response(status, reason.trim().to_owned()));
    }
    let (method, uri, version) = match mode {
        Mode::Strict => {
            // Request-Line = Method SP Request-URI SP SIP-Version CRLF, single spaces only
            // (RFC 4475 `lwsstart`, `trws`, `lwsruri`, `ltgtruri`).
            let mut parts = start.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(u), Some(v), None) if !m.is_empty() && !u.is_empty() => (m, u, v),
                _ => return Err(ParseError::StartLine),
            }
        }
        Mode::Recover => {
            let mut parts = start.split_ascii_whitespace();
            let m = parts.next().ok_or(ParseError::StartLine)?;
            let u = parts.next().ok_or(ParseError::StartLine)?;
            let v = parts.next_back().ok_or(ParseError::StartLine)?;
            if !v.starts_with("SIP/") {
                return Err(ParseError::StartLine);
            }
            (
                m,
                u.trim_start_matches('<').trim_end_matches('>'),
                "SIP/2.0",
            )
        }
    };
    if version != "SIP/2.0" {
        return Err(if version.starts_with("SIP/") {
            ParseError::Version
        } else {
            ParseError::StartLine
        });
    }
    let method = Method::parse(method).map_err(|_| ParseError::StartLine)?;
    let uri = Uri::parse(uri).map_err(ParseError::RequestUri)?;
    if uri.is_sip() && uri.has_headers() && mode == Mode::Strict {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 `escruri`).
        return Err(ParseError::RequestUri(HeaderError(
            "headers not allowed in a Request-URI",
        )));
    }
    Ok(StartLine::Request(method, uri))
}

fn parse_headers(lines: &str, mode: Mode) -> Result<Headers, ParseError> {
    let mut headers = Headers {
        buf: String::with_capacity(lines.len()),
        fields: Vec::with_capacity(16),
    };
    if lines.is_empty() {
        return Ok(headers);
    }
    let mut continuing = false;
    for line in self::lines(lines) {
        if line.starts_with([' ', '\t']) {
            // RFC 3261 §7.3.1: folding is equivalent to a single space. The continued field is
            // the last one, so its value ends the buffer and can grow in place.
            match headers.fields.last_mut() {
                Some(last) if continuing => {
                    let more = line.trim();
                    if !more.is_empty() {
                        if last.end > last.start {
                            headers.buf.push(' ');
                        }
                        headers.buf.push_str(more);
                        last.end = headers.buf.len();
                    }
                }
                _ if mode == Mode::Recover => {}
                _ => return Err(ParseError::HeaderLine),
            }
            continue;
        }
        let parsed = line.split_once(':').and_then(|(name, value)| {
            let name = name.trim_end_matches([' ', '\t']);
            (!name.is_empty() && name.bytes().all(is_token_byte)).then_some((name, value))
        });
        match parsed {
            Some((name, value)) => {
                headers.push(name, value.trim());
                continuing = true;
            }
            None if mode == Mode::Recover => continuing = false,
            None => return Err(ParseError::HeaderLine),
        }
    }
    Ok(headers)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Header lines: split at LF, a trailing CR removed.
fn lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let (line, next) = match memchr::memchr(b'\n', r.as_bytes()) {
            Some(i) => (&r[..i], Some(&r[i + 1..])),
            None => (r, None),
        };
        rest = next;
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:1000@192.0.2.10 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK776asdhds;rport\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:1000@192.0.2.10>\r\n\
        From: \"Alice\" <sip:alice@192.0.2.20>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@192.0.2.20:5060>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\r\n";

    #[test]
    fn parses_and_prints_round_trip() {
        let SipMessage::Request(r) = parse(INVITE.as_bytes()).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri.user(), Some("1000"));
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(r.headers.call_id(), Some("a84b4c76e66710@pc33.atlanta.com"));
        assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(r.headers.max_forwards().unwrap(), Some(70));
        let again = parse(&r.to_bytes()).unwrap();
        assert_eq!(again, SipMessage::Request(r));
    }

    #[test]
    fn compact_names_match_full_names() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a");
        h.push("VIA", "SIP/2.0/UDP b");
        h.push("i", "x");
        h.push("X-Thing", "1");
        assert_eq!(h.count("Via"), 2);
        assert_eq!(h.get("call-id"), Some("x"));
        assert_eq!(h.get("x-thing"), Some("1"));
        h.set("via", "SIP/2.0/UDP c");
        assert_eq!(h.get_all("v").collect::<Vec<_>>(), vec!["SIP/2.0/UDP c"]);
        assert_eq!(canonical_name("K"), Some("Supported"));
        assert_eq!(canonical_name("content-length"), Some("Content-Length"));
    }

    #[test]
    fn names_are_grouped() {
        for (full, compact) in NAMES {
            assert_eq!(canonical_name(full), Some(*full));
            assert_eq!(canonical_name(&full.to_ascii_uppercase()), Some(*full));
            if let Some(c) = compact {
                let via_compact = canonical_name(&char::from(*c).to_string()).unwrap();
                assert!(std::ptr::eq(via_compact, canonical_name(full).unwrap()));
            }
        }
        assert_eq!(canonical_name("X-Custom"), None);
    }

    #[test]
    fn printing_fixes_content_length() {
        let mut r = Response::new(200, "OK");
        r.headers.push("Content-Length", "999");
        r.set_body("application/sdp", b"abc".to_vec());
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.ends_with("Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nabc"));
    }

    #[test]
    fn framing_errors() {
        let bad = |s: &str| parse(s.as_bytes()).unwrap_err();
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n"),
            ParseError::Incomplete
        );
        assert_eq!(
            bad("OPTIONS  sip:a@b SIP/2.0\r\n\r\n"),
            ParseError::StartLine
        );
        assert_eq!(bad("OPTIONS sip:a@b SIP/3.0\r\n\r\n"), ParseError::Version);
        assert_eq!(bad("SIP/2.0 1000 x\r\n\r\n"), ParseError::Status);
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\nnocolon\r\n\r\n"),
            ParseError::HeaderLine
        );
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n"),
            ParseError::HeaderLine
        );
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n"),
            ParseError::ContentLength
        );
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nab"),
            ParseError::Truncated
        );
        assert_eq!(
            bad("OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n"),
            ParseError::MultipleContentLength
        );
        let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
        raw.extend_from_slice(&[0xff, 0xfe]);
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&raw).unwrap_err(), ParseError::NotUtf8);
    }

    #[test]
    fn no_content_length_takes_rest_of_datagram() {
        let SipMessage::Request(r) = parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: y\r\n\r\nbody").unwrap()
        else {
            panic!()
        };
        assert_eq!(r.body, b"body");
    }

    #[test]
    fn recover_is_loose() {
        let r = recover_request(
            b"INVITE  <sip:a@b>  SIP/2.0  \r\nbad line\r\nCall-ID: x\r\nl: -4\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.headers.call_id(), Some("x"));
        assert!(recover_request(b"garbage\r\n\r\n").is_none());
    }
}
