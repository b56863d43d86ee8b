//! Randomised requests built from the schema the server serves. The test reads the schema by
//! introspection, then builds queries and mutations over every root field with arguments
//! generated from their input types: edge-case strings (empty, 100 KB, NUL, RTL, combining
//! marks, LIKE metacharacters, SQL-ish text), extreme integers, odd timestamps, deep JSON,
//! forged cursors, existing and bogus ids. Values go inline as literals or as variables.
//! Whatever it is sent, the server must answer without a 5xx, without an `INTERNAL` error and
//! without internals in its messages, and still be up at the end.
//!
//! `FUZZ_CASES` sets the number of requests, `FUZZ_SEED` replays a run: the seed is printed at
//! the start and in every failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::helpers::{ALL_SCOPES, TestApp};

const DEFAULT_CASES: usize = 2_000;
/// Input objects nest at most this deep (filters recurse through `and`/`or`/`not`).
const MAX_INPUT_DEPTH: usize = 4;
/// Bytes of long strings one request may carry, under the test server's 256 KiB body limit.
const LONG_STRING_BUDGET: usize = 120_000;
const MAX_REPORTED: usize = 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Text that must never reach a client in an error. No generated value contains any of it,
/// so an error that does carries the server's own text.
const LEAKS: &[&str] = &[
    "select ",
    "insert into",
    "delete from",
    "sqlx",
    "sqlite",
    "postgres",
    "panicked",
    "constraint",
    "syntax error",
    "dberr",
    "backtrace",
    "violates",
    ".rs:",
];

// ---------------------------------------------------------------------------------------
// The schema, as introspection tells it.

#[derive(Clone, Debug)]
enum Ty {
    NonNull(Box<Ty>),
    List(Box<Ty>),
    Named(String),
}

impl Ty {
    fn parse(v: &Value) -> Ty {
        match v["kind"].as_str() {
            Some("NON_NULL") => Ty::NonNull(Box::new(Ty::parse(&v["ofType"]))),
            Some("LIST") => Ty::List(Box::new(Ty::parse(&v["ofType"]))),
            _ => Ty::Named(v["name"].as_str().unwrap_or_default().to_owned()),
        }
    }

    fn named(&self) -> &str {
        match self {
            Ty::NonNull(t) | Ty::List(t) => t.named(),
            Ty::Named(n) => n,
        }
    }

    fn is_non_null(&self) -> bool {
        matches!(self, Ty::NonNull(_))
    }

    /// As written in a variable definition.
    fn render(&self) -> String {
        match self {
            Ty::NonNull(t) => format!("{}!", t.render()),
            Ty::List(t) => format!("[{}]", t.render()),
            Ty::Named(n) => n.clone(),
        }
    }
}

#[derive(Debug)]
struct InputValue {
    name: String,
    ty: Ty,
    has_default: bool,
}

impl InputValue {
    fn parse(v: &Value) -> InputValue {
        InputValue {
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            ty: Ty::parse(&v["type"]),
            has_default: !v["defaultValue"].is_null(),
        }
    }

    fn required(&self) -> bool {
        self.ty.is_non_null() && !self.has_default
    }
}

#[derive(Debug)]
struct Field {
    name: String,
    args: Vec<InputValue>,
    ty: Ty,
}

#[derive(Debug, Default)]
struct TypeDef {
    kind: String,
    fields: Vec<Field>,
    input_fields: Vec<InputValue>,
    enum_values: Vec<String>,
    possible_types: Vec<String>,
}

#[derive(Debug)]
struct Schema {
    query: String,
    mutation: Option<String>,
    types: HashMap<String, TypeDef>,
}

const TYPE_REF: &str = "fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";

const INTROSPECTION: &str = "query { __schema { queryType { name } mutationType { name } types { kind name fields { name args { name defaultValue type { ...TypeRef } } type { ...TypeRef } } inputFields { name defaultValue type { ...TypeRef } } enumValues { name } possibleTypes { name } } } }";

impl Schema {
    fn parse(data: &Value) -> Schema {
        let s = &data["__schema"];
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        let types = list(&s["types"])
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap_or_default().to_owned();
                let def = TypeDef {
                    kind: t["kind"].as_str().unwrap_or_default().to_owned(),
                    fields: list(&t["fields"])
                        .iter()
                        .map(|f| Field {
                            name: f["name"].as_str().unwrap_or_default().to_owned(),
                            args: list(&f["args"]).iter().map(InputValue::parse).collect(),
                            ty: Ty::parse(&f["type"]),
                        })
                        .collect(),
                    input_fields: list(&t["inputFields"])
                        .iter()
                        .map(InputValue::parse)
                        .collect(),
                    enum_values: list(&t["enumValues"])
                        .iter()
                        .filter_map(|e| e["name"].as_str().map(str::to_owned))
                        .collect(),
                    possible_types: list(&t["possibleTypes"])
                        .iter()
                        .filter_map(|e| e["name"].as_str().map(str::to_owned))
                        .collect(),
                };
                (name, def)
            })
            .collect();
        Schema {
            query: s["queryType"]["name"]
                .as_str()
                .unwrap_or("Query")
                .to_owned(),
            mutation: s["mutationType"]["name"].as_str().map(str::to_owned),
            types,
        }
    }

    fn kind(&self, name: &str) -> &str {
        self.types.get(name).map_or("SCALAR", |t| t.kind.as_str())
    }

    fn is_leaf(&self, name: &str) -> bool {
        matches!(self.kind(name), "SCALAR" | "ENUM")
    }
}

// ---------------------------------------------------------------------------------------
// What earlier answers gave: ids and cursors to reuse.

#[derive(Default)]
struct Pools {
    ids: BTreeMap<&'static str, Vec<String>>,
    cursors: Vec<String>,
    seen: HashSet<String>,
}

const ID_PREFIXES: &[&str] = &["cus", "act", "usr", "cli", "xid", "spr"];
const POOL_CAP: usize = 400;

impl Pools {
    fn harvest(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                for (key, val) in map {
                    if let Some(s) = val.as_str() {
                        if key == "id" || key.ends_with("Id") {
                            self.add_id(s);
                        }
                        if key.ends_with("ursor") {
                            self.add_cursor(s);
                        }
                    }
                    self.harvest(val);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.harvest(i)),
            _ => {}
        }
    }

    fn add_id(&mut self, id: &str) {
        let Some((prefix, _)) = id.split_once('_') else {
            return;
        };
        let Some(prefix) = ID_PREFIXES.iter().find(|p| **p == prefix) else {
            return;
        };
        let pool = self.ids.entry(prefix).or_default();
        if pool.len() < POOL_CAP && self.seen.insert(id.to_owned()) {
            pool.push(id.to_owned());
        }
    }

    fn add_cursor(&mut self, cursor: &str) {
        if self.cursors.len() < POOL_CAP && self.seen.insert(cursor.to_owned()) {
            self.cursors.push(cursor.to_owned());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values.

/// A generated input value, printable as a GraphQL literal or as JSON for a variable.
#[derive(Clone, Debug)]
enum GVal {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Enum(String),
    List(Vec<GVal>),
    Obj(Vec<(String, GVal)>),
    Json(Value),
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A GraphQL string literal: quotes, backslashes and control characters escaped.
fn string_literal(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn float_literal(f: f64) -> String {
    // `{:e}` always has an exponent, so the literal is a Float even for whole numbers.
    format!("{f:e}")
}

fn json_literal(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&float_literal(f)),
            _ => out.push_str("null"),
        },
        Value::String(s) => string_literal(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_literal(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                assert!(
                    is_name(k),
                    "test bug: JSON key {k:?} cannot be written inline"
                );
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                json_literal(item, out);
            }
            out.push('}');
        }
    }
}

impl GVal {
    fn literal(&self, out: &mut String) {
        match self {
            GVal::Null => out.push_str("null"),
            GVal::Int(i) => out.push_str(&i.to_string()),
            GVal::Float(f) => out.push_str(&float_literal(*f)),
            GVal::Str(s) => string_literal(s, out),
            GVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            GVal::Enum(e) => out.push_str(e),
            GVal::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.literal(out);
                }
                out.push(']');
            }
            GVal::Obj(fields) => {
                out.push('{');
                for (i, (k, item)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push_str(": ");
                    item.literal(out);
                }
                out.push('}');
            }
            GVal::Json(v) => json_literal(v, out),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            GVal::Null => Value::Null,
            GVal::Int(i) => json!(i),
            GVal::Float(f) => json!(f),
            GVal::Str(s) | GVal::Enum(s) => Value::String(s.clone()),
            GVal::Bool(b) => Value::Bool(*b),
            GVal::List(items) => Value::Array(items.iter().map(GVal::to_json).collect()),
            GVal::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
            GVal::Json(v) => v.clone(),
        }
    }
}

const WORDS: &[&str] = &[
    "Ada Lovelace",
    "Grace Hopper",
    "vip",
    "trial",
    "stripe",
    "hubspot",
    "Acme Inc",
    "call notes",
    "twitter",
    "linkedin",
    "a",
    "Z",
    "x y z",
];

const UNICODE: &[&str] = &[
    "😀👩‍👩‍👧‍👦🏳️‍🌈",
    "שלום עולם",
    "مرحبا بالعالم",
    "\u{202E}evil\u{202C}",
    "e\u{301}\u{302}\u{303}\u{304}\u{305}",
    "Z\u{337}\u{322}\u{354}a\u{338}l\u{334}g\u{335}o\u{336}",
    "\u{FEFF}bom",
    "\u{FFFF}\u{FFFE}",
    "𝕳𝖊𝖑𝖑𝖔",
    "日本語のテキスト",
    "\u{2028}\u{2029}",
    "İstanbul ß ǅ ﬁ",
    "\u{200B}\u{200D}",
    "Ω≈ç√∫",
];

const LIKE_META: &[&str] = &[
    "%", "_", "\\", "%%", "%_%", "a%b_c\\d", "\\%", "\\_", "%\\", "[a-z]", "*", "^$.*+?", "ESCAPE",
];

const SQL_ISH: &[&str] = &[
    "' OR 1=1 --",
    "'; DROP TABLE customers; --",
    "\" OR \"\"=\"",
    "1' AND '1'='1",
    "') OR ('a'='a",
    "$1",
    "?",
    ":name",
    "' || '",
    "/* comment */",
    "1; --",
    "NULL",
    "\\'",
];

const WHITESPACE: &[&str] = &[
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    " a ",
    "\u{7f}",
    "\u{1}\u{2}",
];

const PHONES: &[&str] = &[
    "+44 20 7946 0958",
    "+1 (202) 555-0143",
    "+12025550143",
    "020 7946 0958",
    "+999 123",
    "+",
];

const ORDERS: &[&str] = &[
    "name",
    "createdAt",
    "updatedAt",
    "lastActivityAt",
    "occurredAt",
    "dueAt",
    "",
    "NAME",
    "id",
];

/// Timestamps chrono reads: valid for the `DateTime` scalar, in range or not for the server.
const DATETIMES: &[&str] = &[
    "0001-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2024-02-29T12:34:56.789Z",
    "2024-06-01T12:00:00+14:00",
    "2024-06-01T12:00:00-12:00",
    "2200-01-01T00:00:00Z",
    "2200-12-31T23:59:59.999999Z",
    "2201-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
];

/// Text the scalar may refuse: the server's to judge.
const ODD_DATETIMES: &[&str] = &[
    "+275760-09-13T00:00:00Z",
    "-271821-04-20T00:00:00Z",
    "+010000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "not a date",
    "",
    "2024-13-45T25:61:61Z",
    "1970-01-01",
    "2024-01-01T00:00:00",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00.123456789123Z",
    "2016-12-31T23:59:60Z",
    "2024-01-01T00:00:00Z' OR 1=1 --",
    "2024-01-01T00:00:00\u{0}Z",
    "1e10",
];

struct Gen<'a> {
    rng: &'a mut StdRng,
    schema: &'a Schema,
    pools: &'a Pools,
    inline: bool,
    vars: Vec<(String, String, Value)>,
    long_budget: usize,
    /// A value was generated that its scalar may refuse (the server's call), so a
    /// validation error is expected rather than the test's fault.
    judged: bool,
}

impl Gen<'_> {
    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items.choose(self.rng).copied().unwrap_or_default()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn value(&mut self, ty: &Ty, ctx: &str, depth: usize) -> GVal {
        match ty {
            Ty::NonNull(inner) => self.non_null(inner, ctx, depth),
            other => {
                if self.chance(0.08) {
                    GVal::Null
                } else {
                    self.non_null(other, ctx, depth)
                }
            }
        }
    }

    fn non_null(&mut self, ty: &Ty, ctx: &str, depth: usize) -> GVal {
        match ty {
            Ty::NonNull(inner) => self.non_null(inner, ctx, depth),
            Ty::List(inner) => self.list(inner, ctx, depth),
            Ty::Named(name) => self.named(name, ctx, depth),
        }
    }

    fn list(&mut self, inner: &Ty, ctx: &str, depth: usize) -> GVal {
        let leaf = self.schema.is_leaf(inner.named());
        let mut n = match self.rng.random_range(0..100) {
            0..15 => 0,
            15..92 => self.rng.random_range(1..=3),
            _ if leaf => 150,
            _ if depth < 1 => self.rng.random_range(21..=25),
            _ => self.rng.random_range(1..=3),
        };
        if !leaf && depth >= MAX_INPUT_DEPTH {
            n = 0;
        }
        GVal::List((0..n).map(|_| self.value(inner, ctx, depth + 1)).collect())
    }

    fn named(&mut self, name: &str, ctx: &str, depth: usize) -> GVal {
        match name {
            "String" => GVal::Str(self.string(ctx)),
            "ID" => GVal::Str(self.id(ctx)),
            "Int" => GVal::Int(self.int(ctx)),
            "Float" => GVal::Float(self.float()),
            "Boolean" => GVal::Bool(self.chance(0.5)),
            "DateTime" => GVal::Str(self.datetime()),
            "JSON" => GVal::Json(self.json_top()),
            _ => match self.schema.kind(name) {
                "ENUM" => {
                    let values = &self.schema.types[name].enum_values;
                    GVal::Enum(values.choose(self.rng).cloned().unwrap_or_default())
                }
                "INPUT_OBJECT" => self.object(name, depth),
                _ => {
                    // A custom scalar this test does not know: any text, the server judges.
                    self.judged = true;
                    GVal::Str(self.string(ctx))
                }
            },
        }
    }

    fn object(&mut self, name: &str, depth: usize) -> GVal {
        let schema = self.schema;
        let mut fields = Vec::new();
        for f in &schema.types[name].input_fields {
            let nested = !schema.is_leaf(f.ty.named());
            let include = f.required()
                || if nested {
                    depth < MAX_INPUT_DEPTH && self.chance(0.3)
                } else {
                    self.chance(0.45)
                };
            if include {
                let ctx = format!("{name}.{}", f.name).to_lowercase();
                fields.push((f.name.clone(), self.value(&f.ty, &ctx, depth + 1)));
            }
        }
        GVal::Obj(fields)
    }

    fn long_string(&mut self) -> Option<String> {
        if self.long_budget < 100_000 {
            return None;
        }
        self.long_budget -= 100_000;
        let unit = self.pick(&["a", "é", "😀", "%", "\\", "' OR 1=1 --", "x_"]);
        // A backslash doubles in a literal and again in the JSON body around it.
        let bytes = if unit == "\\" { 50_000 } else { 100_000 };
        Some(unit.repeat(bytes / unit.len()))
    }

    fn sized_string(&mut self) -> String {
        let n = *[
            1, 49, 50, 51, 199, 200, 201, 499, 500, 501, 2049, 16_385, 65_537,
        ]
        .choose(self.rng)
        .unwrap_or(&1);
        if n > 1_000 {
            if self.long_budget < n {
                return "x".repeat(200);
            }
            self.long_budget -= n;
        }
        "x".repeat(n)
    }

    fn plain(&mut self) -> String {
        if self.chance(0.5) {
            self.pick(WORDS).to_owned()
        } else {
            let len = self.rng.random_range(1..=12);
            (0..len)
                .map(|_| char::from(self.rng.random_range(b'a'..=b'z')))
                .collect()
        }
    }

    fn string(&mut self, ctx: &str) -> String {
        if (ctx.ends_with(".after") || ctx.ends_with(".before")) && self.chance(0.7) {
            return self.cursor();
        }
        if ctx.contains("email") && self.chance(0.4) {
            let local = self.plain().replace(' ', ".");
            return format!("{local}@Example.COM");
        }
        if ctx.contains("phone") && self.chance(0.4) {
            return self.pick(PHONES).to_owned();
        }
        if ctx.contains("url") && self.chance(0.4) {
            return format!("https://example.com/{}", self.plain().replace(' ', "-"));
        }
        if ctx.ends_with("scopes") && self.chance(0.5) {
            let scopes: Vec<&str> = ALL_SCOPES.split(' ').collect();
            return self.pick(&scopes).to_owned();
        }
        match self.rng.random_range(0..100) {
            0..25 => self.plain(),
            25..32 => String::new(),
            32..36 => self.long_string().unwrap_or_else(|| "long".to_owned()),
            36..41 => self.sized_string(),
            41..46 => self.pick(&["a\u{0}b", "\u{0}", "x\u{0}"]).to_owned(),
            46..60 => self.pick(UNICODE).to_owned(),
            60..72 => self.pick(LIKE_META).to_owned(),
            72..82 => self.pick(SQL_ISH).to_owned(),
            82..90 => self.id(ctx),
            90..95 => self.cursor(),
            _ => self.pick(WHITESPACE).to_owned(),
        }
    }

    fn random_ulid(&mut self) -> String {
        ulid::Ulid::from((self.rng.random::<u64>(), self.rng.random::<u64>())).to_string()
    }

    fn pooled_id(&mut self, ctx: &str) -> Option<String> {
        let preferred = if ctx.contains("activit") {
            Some("act")
        } else if ctx.contains("customer") {
            Some("cus")
        } else if ctx.contains("owner") || ctx.contains("author") || ctx.contains("user") {
            Some("usr")
        } else if ctx.contains("client") {
            Some("cli")
        } else {
            None
        };
        let pools = self.pools;
        let kind = match preferred {
            Some(kind) if self.chance(0.75) => kind,
            _ => {
                let kinds: Vec<&str> = pools.ids.keys().copied().collect();
                self.pick(&kinds)
            }
        };
        pools.ids.get(kind)?.choose(self.rng).cloned()
    }

    fn id(&mut self, ctx: &str) -> String {
        match self.rng.random_range(0..100) {
            0..60 => match self.pooled_id(ctx) {
                Some(id) => id,
                None => format!("cus_{}", self.random_ulid()),
            },
            60..75 => {
                let prefix = self.pick(ID_PREFIXES);
                format!("{prefix}_{}", self.random_ulid())
            }
            75..92 => {
                let prefix = self.pick(&["cus", "act", "usr", "cli", "zzz", "", "CUS"]);
                let junk = match self.rng.random_range(0..6) {
                    0 => self.random_ulid().to_lowercase(),
                    1 => "8ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(),
                    2 => "00000000000000000000000000".to_owned(),
                    _ => {
                        let ctx = format!("{ctx}.junk");
                        self.string(&ctx)
                    }
                };
                format!("{prefix}_{junk}")
            }
            _ => self.plain(),
        }
    }

    fn cursor(&mut self) -> String {
        match self.rng.random_range(0..12) {
            0..5 => match self.pools.cursors.choose(self.rng) {
                Some(c) => c.clone(),
                None => "Y3Vyc29y".to_owned(),
            },
            5 => {
                let order = self.pick(ORDERS);
                let value = match self.rng.random_range(0..10) {
                    0 => Value::Null,
                    1 => json!(i64::MAX),
                    2 => json!(i64::MIN),
                    3 => json!(-1),
                    4 => json!(253_402_300_799_999_999_i64),
                    5 => json!(""),
                    6 => json!(self.pick(SQL_ISH)),
                    7 => json!(1.5),
                    8 => json!("z".repeat(1_000)),
                    _ => json!([1, {"x": true}]),
                };
                let id = self.id("cursor.id");
                let cursor = if self.chance(0.8) {
                    json!({"o": order, "v": value, "i": id})
                } else {
                    json!({"o": order, "v": value})
                };
                URL_SAFE_NO_PAD.encode(cursor.to_string())
            }
            6 => {
                let seq = self.pick(&[
                    "-1",
                    "0",
                    "1",
                    "9223372036854775807",
                    "99999999999999999999",
                    "1e3",
                    " 1",
                    "abc",
                    "",
                ]);
                URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
            }
            7 => {
                let len = self.rng.random_range(0..64);
                let bytes: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                if self.chance(0.5) {
                    STANDARD.encode(bytes)
                } else {
                    URL_SAFE_NO_PAD.encode(bytes)
                }
            }
            8 => self
                .pick(&["!!!", "====", "a", "%%%", "Y3Vyc29y===", "e30", "\u{0}"])
                .to_owned(),
            9 => {
                let options: [&[u8]; 6] = [
                    b"[]",
                    b"null",
                    b"{\"o\":1}",
                    b"\"x\"",
                    &[0xff, 0xfe, 0x00],
                    b"{\"o\":\"name\",\"v\":\"a\",\"i\":\"cus_x\",\"o\":\"dueAt\"}",
                ];
                let raw = options.choose(self.rng).copied().unwrap_or_default();
                URL_SAFE_NO_PAD.encode(raw)
            }
            10 => "QUFB".repeat(800),
            _ => {
                let text = "q".repeat(1_500);
                URL_SAFE_NO_PAD.encode(json!({"o": "name", "v": text, "i": "cus_x"}).to_string())
            }
        }
    }

    fn int(&mut self, ctx: &str) -> i64 {
        let page = ctx.ends_with(".first") || ctx.ends_with(".last");
        match self.rng.random_range(0..100) {
            0..8 => 0,
            8..15 => -1,
            15..21 => i64::from(i32::MIN),
            21..28 => i64::from(i32::MAX),
            28..35 => i64::from(self.rng.random::<i32>()),
            35..40 => *[99, 100, 101, 500, 501, 604_800, 604_801]
                .choose(self.rng)
                .unwrap_or(&100),
            _ if page => self.rng.random_range(1..=20),
            _ => self.rng.random_range(1..=5),
        }
    }

    fn float(&mut self) -> f64 {
        match self.rng.random_range(0..8) {
            0 => 0.0,
            1 => -1.0,
            2 => 1e308,
            3 => -1e308,
            4 => f64::MIN_POSITIVE,
            5 => f64::from(i32::MAX) + 1.0,
            _ => self.rng.random_range(-1e6..1e6),
        }
    }

    fn datetime(&mut self) -> String {
        match self.rng.random_range(0..100) {
            0..55 => self.pick(DATETIMES).to_owned(),
            55..80 => {
                let secs = self.rng.random_range(-2_208_988_800_i64..7_258_118_400);
                chrono::DateTime::from_timestamp(secs, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "2024-01-01T00:00:00Z".to_owned())
            }
            _ => {
                self.judged = true;
                self.pick(ODD_DATETIMES).to_owned()
            }
        }
    }

    fn json_key(&mut self) -> String {
        if self.inline || self.chance(0.6) {
            self.pick(&[
                "a",
                "b",
                "key",
                "_x",
                "camelCase",
                "k1",
                "nested",
                "__proto__",
            ])
            .to_owned()
        } else {
            self.pick(&[
                "",
                "a\u{0}b",
                "😀",
                "' OR 1=1",
                "$where",
                "a.b",
                "constructor",
                "%",
            ])
            .to_owned()
        }
    }

    fn json_scalar(&mut self) -> Value {
        match self.rng.random_range(0..12) {
            0 => Value::Null,
            1 => json!(self.chance(0.5)),
            2 => json!(u64::MAX),
            3 => json!(i64::MIN),
            4 => json!(1e308),
            5 => json!(5e-324),
            6 => json!(0.1),
            7 => json!(self.rng.random::<i32>()),
            _ => {
                let ctx = "json.value";
                json!(self.string(ctx))
            }
        }
    }

    fn json(&mut self, depth: usize) -> Value {
        if depth == 0 || self.chance(0.3) {
            return self.json_scalar();
        }
        let n = self.rng.random_range(0..=4);
        if self.chance(0.6) {
            let mut map = Map::new();
            for _ in 0..n {
                let key = self.json_key();
                let value = self.json(depth - 1);
                map.insert(key, value);
            }
            Value::Object(map)
        } else {
            Value::Array((0..n).map(|_| self.json(depth - 1)).collect())
        }
    }

    fn json_top(&mut self) -> Value {
        match self.rng.random_range(0..100) {
            0..55 => {
                let depth = self.rng.random_range(1..=3);
                let mut map = Map::new();
                for _ in 0..self.rng.random_range(0..=5) {
                    let key = self.json_key();
                    let value = self.json(depth);
                    map.insert(key, value);
                }
                Value::Object(map)
            }
            55..72 => {
                let depth = *[5, 10, 19, 20, 20, 40].choose(self.rng).unwrap_or(&20);
                let mut v = self.json_scalar();
                for level in 0..depth {
                    v = if level % 3 == 2 {
                        json!([v])
                    } else {
                        let key = self.json_key();
                        Value::Object(Map::from_iter([(key, v)]))
                    };
                }
                if !v.is_object() {
                    v = json!({"wrapped": v});
                }
                v
            }
            72..85 => self.json(2),
            85..95 => json!({
                "big": u64::MAX,
                "neg": i64::MIN,
                "huge": 1e308,
                "tiny": 5e-324,
                "frac": 0.1,
                "list": [1, -1, 0, 2_147_483_648_i64],
            }),
            _ => {
                let n = *[16 * 1024 - 12, 16 * 1024, 17_000]
                    .choose(self.rng)
                    .unwrap_or(&17_000);
                if self.long_budget < n {
                    return json!({"a": "small"});
                }
                self.long_budget -= n;
                json!({"a": "x".repeat(n)})
            }
        }
    }

    // --- the document -------------------------------------------------------------------

    fn args(&mut self, owner: &str, args: &[InputValue]) -> String {
        let mut parts = Vec::new();
        for a in args {
            if !a.required() && !self.chance(0.4) {
                continue;
            }
            let ctx = format!("{owner}.{}", a.name).to_lowercase();
            let v = self.value(&a.ty, &ctx, 0);
            if self.inline {
                let mut lit = String::new();
                v.literal(&mut lit);
                parts.push(format!("{}: {lit}", a.name));
            } else {
                let name = format!("v{}", self.vars.len());
                parts.push(format!("{}: ${name}", a.name));
                self.vars.push((name, a.ty.render(), v.to_json()));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    fn field(&mut self, f: &Field, level: usize) -> String {
        let args = self.args(&f.name, &f.args);
        let ty = f.ty.named();
        if self.schema.is_leaf(ty) {
            format!("{}{args}", f.name)
        } else {
            let sel = self.selection(ty, level + 1);
            format!("{}{args} {{ {sel} }}", f.name)
        }
    }

    /// A small selection on an output type: scalars, and below the first levels one level
    /// of nested objects; connections pick `nodes`, `totalCount`, `pageInfo`, `edges`.
    fn selection(&mut self, ty: &str, level: usize) -> String {
        let schema = self.schema;
        let def = &schema.types[ty];
        let mut parts: Vec<String> = Vec::new();
        let has = |name: &str| def.fields.iter().any(|f| f.name == name);
        if ty.ends_with("Connection") && has("nodes") && has("pageInfo") {
            let node_ty = def
                .fields
                .iter()
                .find(|f| f.name == "nodes")
                .map(|f| f.ty.named().to_owned())
                .unwrap_or_default();
            if self.chance(0.6) {
                let sel = if level <= 1 && self.chance(0.6) {
                    self.selection(&node_ty, level + 1)
                } else {
                    "id".to_owned()
                };
                parts.push(format!("nodes {{ {sel} }}"));
            }
            if has("totalCount") && self.chance(0.4) {
                parts.push("totalCount".to_owned());
            }
            if self.chance(0.5) {
                parts.push(if self.chance(0.5) {
                    "pageInfo { hasNextPage }".to_owned()
                } else {
                    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }".to_owned()
                });
            }
            if has("edges") && self.chance(0.3) {
                parts.push("edges { cursor node { id } }".to_owned());
            }
            if parts.is_empty() {
                parts.push("nodes { id }".to_owned());
            }
            return parts.join(" ");
        }
        for f in &def.fields {
            let leaf = schema.is_leaf(f.ty.named());
            let pick = if leaf {
                self.chance(0.5)
            } else {
                level < 2 && self.chance(0.35)
            };
            if pick {
                parts.push(self.field(f, level));
            }
        }
        if def.kind == "INTERFACE" || def.kind == "UNION" {
            for possible in &def.possible_types {
                if self.chance(0.5) {
                    let sel = self.selection(possible, level.max(1));
                    parts.push(format!("... on {possible} {{ {sel} }}"));
                }
            }
        }
        if parts.is_empty() || self.chance(0.1) {
            parts.push("__typename".to_owned());
        }
        parts.join(" ")
    }

    /// One operation over 1–3 root fields (aliased), and its variables.
    fn operation(&mut self, mutation: bool) -> (String, Value) {
        let schema = self.schema;
        let root = if mutation {
            schema.mutation.as_deref().unwrap_or(&schema.query)
        } else {
            &schema.query
        };
        let fields = &schema.types[root].fields;
        let n = if mutation {
            self.rng.random_range(1..=2)
        } else {
            self.rng.random_range(1..=3)
        };
        let mut body = Vec::new();
        for i in 0..n {
            let Some(f) = fields.choose(self.rng) else {
                break;
            };
            body.push(format!("f{i}: {}", self.field(f, 0)));
        }
        let keyword = if mutation { "mutation" } else { "query" };
        let (header, vars) = if self.vars.is_empty() {
            (keyword.to_owned(), Value::Object(Map::new()))
        } else {
            let decls: Vec<String> = self
                .vars
                .iter()
                .map(|(name, ty, _)| format!("${name}: {ty}"))
                .collect();
            let values = self
                .vars
                .drain(..)
                .map(|(name, _, v)| (name, v))
                .collect::<Map<_, _>>();
            (
                format!("{keyword} Fuzz({})", decls.join(", ")),
                Value::Object(values),
            )
        };
        (format!("{header} {{ {} }}", body.join(" ")), vars)
    }
}

// ---------------------------------------------------------------------------------------
// Sending and judging.

struct Answer {
    status: StatusCode,
    body: Value,
}

async fn send(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: &Value,
) -> Result<Answer, String> {
    let request = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .bearer_auth(token)
        .body(json!({ "query": query, "variables": variables }).to_string())
        .send();
    let answer = async {
        let res = request.await.map_err(|e| format!("request failed: {e}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| format!("body unreadable: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, answer)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
}

/// What is wrong with an answer, whatever the request was.
fn faults(answer: &Answer) -> Vec<String> {
    let mut found = Vec::new();
    if answer.status.is_server_error() {
        found.push(format!("HTTP {}", answer.status));
    }
    let mut texts = Vec::new();
    match &answer.body {
        Value::String(text) => texts.push(text.to_lowercase()),
        body => {
            for err in body["errors"].as_array().into_iter().flatten() {
                if err["extensions"]["code"] == "INTERNAL" {
                    found.push(format!(
                        "INTERNAL error at {} ({})",
                        err["path"], err["message"]
                    ));
                }
                texts.push(err.to_string().to_lowercase());
            }
        }
    }
    for text in texts {
        for needle in LEAKS {
            if text.contains(needle) {
                found.push(format!("error text contains {needle:?}"));
            }
        }
    }
    found
}

/// Long strings cut down, so a report stays readable (the seed reproduces the original).
fn shorten_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(shorten(s, 200)),
        Value::Array(items) if items.len() > 20 => {
            let mut out: Vec<Value> = items.iter().take(5).map(shorten_json).collect();
            out.push(json!(format!("… {} items in all", items.len())));
            Value::Array(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(shorten_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (shorten(k, 100), shorten_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…<{} bytes in all>", &s[..cut], s.len())
}

/// Shortens the long string literals inside a document.
fn shorten_query(q: &str) -> String {
    let mut out = String::new();
    let mut rest = q;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let lit = &rest[start..];
        let mut end = 1;
        let bytes = lit.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let end = (end + 1).min(lit.len());
        out.push_str(&shorten(&lit[..end], 200));
        rest = &lit[end..];
    }
    out.push_str(rest);
    out
}

struct Failure {
    case: usize,
    problems: Vec<String>,
    query: String,
    variables: Value,
    status: String,
    body: String,
}

impl Failure {
    fn report(&self, seed: u64) -> String {
        format!(
            "--- case {} (FUZZ_SEED={seed}): {}\nquery: {}\nvariables: {}\nstatus: {}\nbody: {}\n",
            self.case,
            self.problems.join("; "),
            shorten_query(&self.query),
            shorten_json(&self.variables),
            self.status,
            shorten(&self.body, 2_000),
        )
    }
}

async fn seed_data(app: &TestApp, token: &str, pools: &mut Pools) {
    let stages = ["LEAD", "PROSPECT", "CUSTOMER", "CHURNED"];
    for (i, stage) in stages.iter().enumerate() {
        let id = app
            .customer(json!({
                "name": format!("Seed {i} Lovelace"),
                "email": format!("seed{i}@example.com"),
                "phone": "+44 20 7946 0958",
                "company": "Analytical Engines",
                "lifecycleStage": stage,
                "tags": ["vip", format!("t{i}")],
                "customFields": {"tier": i, "nested": {"ok": true}},
                "externalIds": [{"source": "stripe", "externalId": format!("cus_stripe_{i}")}],
                "socialProfiles": [{"network": "twitter", "handle": format!("@seed{i}")}],
            }))
            .await;
        for kind in ["CALL", "TASK"] {
            app.activity(json!({
                "customerId": id,
                "kind": kind,
                "subject": format!("{kind} with seed {i}"),
                "body": "notes",
                "occurredAt": "2024-05-01T10:00:00Z",
                "dueAt": "2024-06-01T10:00:00Z",
            }))
            .await;
        }
    }
    let reads = [
        "mutation { createApiClient(input: {name: \"fuzz seed\", scopes: [\"customers:read\"]}) { apiClient { id } } }",
        "{ customers(first: 10) { edges { cursor node { id owner { id } externalIds { externalId } } } } }",
        "{ activities(first: 10) { edges { cursor node { id author { id } } } } }",
        "{ changes(first: 5) { endCursor events { entityId } } }",
    ];
    for q in reads {
        let answer = send(app, token, q, &json!({}))
            .await
            .unwrap_or_else(|e| panic!("seeding: {e}"));
        assert!(
            answer.body.get("errors").is_none(),
            "seeding failed: {q}: {}",
            answer.body
        );
        pools.harvest(&answer.body["data"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schema_driven_requests_never_break_the_server() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random);
    println!("fuzz: FUZZ_SEED={seed} FUZZ_CASES={cases}");

    let app = TestApp::spawn().await;
    let token = app.token(ALL_SCOPES);
    let started = Instant::now();

    let introspection = format!("{INTROSPECTION} {TYPE_REF}");
    let answer = send(&app, &token, &introspection, &json!({}))
        .await
        .unwrap_or_else(|e| panic!("introspection: {e}"));
    assert!(
        answer.status.is_success() && answer.body.get("errors").is_none(),
        "introspection failed: {} {}",
        answer.status,
        answer.body
    );
    let schema = Schema::parse(&answer.body["data"]);
    assert!(
        schema.mutation.is_some() && schema.types.contains_key(&schema.query),
        "introspection gave no root types: {}",
        answer.body
    );

    let mut pools = Pools::default();
    seed_data(&app, &token, &mut pools).await;

    let mut rng = StdRng::seed_from_u64(seed);
    let mut failures: Vec<Failure> = Vec::new();
    let mut failed_cases = 0usize;
    let mut signatures: BTreeMap<String, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut executed = 0usize;
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    let mut fields: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut unexpected_validation: Vec<String> = Vec::new();
    let mut server_down = false;

    for case in 0..cases {
        let mutation = rng.random_bool(0.4);
        let inline = rng.random_bool(0.5);
        let mut generator = Gen {
            rng: &mut rng,
            schema: &schema,
            pools: &pools,
            inline,
            vars: Vec::new(),
            long_budget: LONG_STRING_BUDGET,
            judged: false,
        };
        let (query, variables) = generator.operation(mutation);
        let judged = generator.judged;

        let (problems, status, body) = match send(&app, &token, &query, &variables).await {
            Ok(answer) => {
                let mut found = faults(&answer);
                if !answer.body["data"].is_null() {
                    executed += 1;
                }
                for err in answer.body["errors"].as_array().into_iter().flatten() {
                    let code = err["extensions"]["code"].as_str().unwrap_or("<none>");
                    *codes.entry(code.to_owned()).or_default() += 1;
                    let message = err["message"].as_str().unwrap_or_default();
                    *messages
                        .entry(format!("{code}: {}", shorten(message, 90)))
                        .or_default() += 1;
                    let expected = judged
                        || message.contains("costs")
                        || message.contains("too complex")
                        || message.contains("nested")
                        || message.contains("selects more than");
                    if code == "GRAPHQL_PARSE_FAILED" {
                        // The document is built by this test: not parsing is its own bug.
                        found.push(format!(
                            "test bug: the generated document does not parse: {message}"
                        ));
                    } else if code.starts_with("GRAPHQL_") && !expected {
                        unexpected_validation
                            .push(format!("{code}: {message} in {}", shorten_query(&query)));
                    }
                }
                if let Some(data) = answer.body["data"].as_object() {
                    for (alias, v) in data {
                        let name = query
                            .split(&format!("{alias}: "))
                            .nth(1)
                            .and_then(|rest| rest.split(['(', ' ']).next())
                            .unwrap_or_default()
                            .to_owned();
                        let entry = fields.entry(name).or_default();
                        entry.0 += 1;
                        let clean =
                            !v.is_null() && v["userErrors"].as_array().is_none_or(Vec::is_empty);
                        if clean {
                            entry.1 += 1;
                        }
                    }
                }
                pools.harvest(&answer.body["data"]);
                (found, answer.status.to_string(), answer.body.to_string())
            }
            Err(e) => (vec![e.clone()], "none".to_owned(), e),
        };
        if problems.is_empty() {
            continue;
        }
        failed_cases += 1;
        let body_json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let error_lines: Vec<String> = body_json["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let path: Vec<String> = e["path"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect();
                format!("{} @ {}", e["message"], path.join("."))
            })
            .collect();
        *signatures
            .entry(format!(
                "{} | {}",
                problems.join("; "),
                error_lines.join(" / ")
            ))
            .or_default() += 1;
        if failures.len() < MAX_REPORTED {
            failures.push(Failure {
                case,
                problems: problems.clone(),
                query,
                variables,
                status,
                body,
            });
        }
        if status_is_missing(&problems) {
            let alive = send(&app, &token, "{ __typename }", &json!({})).await;
            if alive.is_err() {
                server_down = true;
                break;
            }
        }
    }

    let alive = send(&app, &token, "{ __typename }", &json!({})).await;
    let still_up = matches!(&alive, Ok(a) if a.status == StatusCode::OK && a.body["data"]["__typename"] == "Query");
    let elapsed = started.elapsed();

    println!(
        "fuzz: {cases} cases in {:.1}s, {executed} executed; error codes: {codes:?}",
        elapsed.as_secs_f64()
    );
    let mut top: Vec<(&String, &usize)> = messages.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    println!("fuzz: most frequent errors:");
    for (message, count) in top.iter().take(15) {
        println!("  {count:>5} {message}");
    }
    println!("fuzz: root fields (answered, of which clean): {fields:?}");
    if !unexpected_validation.is_empty() {
        println!(
            "fuzz: {} parse/validation errors not explained by limits or odd scalar text, e.g.:",
            unexpected_validation.len()
        );
        for line in unexpected_validation.iter().take(10) {
            println!("  {}", shorten(line, 600));
        }
    }

    let mut report = String::new();
    if server_down || !still_up {
        let _ = writeln!(
            report,
            "the server is down after the run (FUZZ_SEED={seed}): {:?}",
            alive.map(|a| (a.status, a.body))
        );
    }
    if failed_cases > 0 {
        let _ = writeln!(
            report,
            "{failed_cases} of {cases} cases failed (FUZZ_SEED={seed} FUZZ_CASES={cases}); distinct failures:"
        );
        for (signature, count) in &signatures {
            let _ = writeln!(report, "  {count} × {}", shorten(signature, 400));
        }
        let _ = writeln!(report, "the first {}:", failures.len());
        for f in &failures {
            report.push_str(&f.report(seed));
        }
    }
    assert!(report.is_empty(), "{report}");

    // The run means something only if most requests got past validation to the resolvers.
    assert!(
        executed * 2 >= cases,
        "only {executed} of {cases} requests executed (FUZZ_SEED={seed}): the generator is off"
    );
}

/// A transport failure: the server may be gone.
fn status_is_missing(problems: &[String]) -> bool {
    problems.iter().any(|p| {
        p.starts_with("request failed")
            || p.starts_with("no answer")
            || p.starts_with("body unreadable")
    })
}
