//! `crm import` as an operator runs it against a server's database: customers from CSV or
//! JSON Lines, seen through the API with their keys and events; rejected rows named by line;
//! the modes (per row, all or nothing, dry run); the exit status a script reads.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp};

/// What a user sees of one run: the exit status and standard error.
struct Ran {
    code: i32,
    stderr: String,
}

async fn import(app: &TestApp, file: &Path, args: &[&str]) -> Ran {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("import")
        .arg(file)
        .args(["--org", &app.org, "--database-url", &app.db_url])
        .args(args)
        .output()
        .await
        .expect("crm runs");
    Ran {
        code: out.status.code().expect("an exit status"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A file of the test's own, kept as long as the returned directory.
fn file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write the file");
    (dir, path)
}

const CUSTOMERS: &str = "{ customers(first: 50, orderBy: {field: NAME}) { totalCount nodes { id name email phone company lifecycleStage tags customFields version owner { subject } externalIds { source externalId } } } }";

async fn customers_as(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.gql_as(Some(token), CUSTOMERS, json!({})).await;
    r.assert_ok();
    r.data("customers.nodes").as_array().expect("nodes").clone()
}

async fn customers(app: &TestApp) -> Vec<Value> {
    customers_as(app, &app.admin()).await
}

/// The tenant's `changes` feed, oldest first, once it holds `count` events and has settled.
/// The server learns of another process's writes from its periodic poll of the log (or
/// `NOTIFY` on PostgreSQL), and the feed shows no event past what the server has seen.
async fn feed(app: &TestApp, count: usize) -> Vec<Value> {
    let read = || async {
        let r = app
            .gql(
                "{ changes(first: 500) { hasMore events { entity entityId op changedFields } } }",
                json!({}),
            )
            .await;
        r.assert_ok();
        assert_eq!(r.data("changes.hasMore"), false, "one page holds the feed");
        r.data("changes.events").as_array().expect("events").clone()
    };
    // Up to 15 s: on PostgreSQL, the `seq`s a rolled-back import spent are a gap that the
    // server waits out (its event gap timeout, 10 s here) before it shows what follows.
    for _ in 0..150 {
        if read().await.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Long enough for the server to have seen anything more (it polls every 500 ms).
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    read().await
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list:#?}"))
}

#[tokio::test]
async fn a_csv_file_lands_with_its_fields_keys_and_events_and_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_dir, path) = file(
        "customers.csv",
        b"externalId,name,email,phone,company,lifecycleStage,tags,customFields\r\n\
          C-1,Ada Lovelace,Ada@Example.com,+1 202 555 0123,\"Engines, Ltd\",customer,vip;Math,\"{\"\"tier\"\": 2}\"\r\n\
          C-2,Bob,,,,,\"[\"\"a\"\", \"\"b\"\"]\",\r\n\
          ,Keyless,,,,PROSPECT,,\r\n",
    );
    let ran = import(&app, &path, &[]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("rows read: 3, created: 3, updated: 0, unchanged: 0, rejected: 0"),
        "{}",
        ran.stderr
    );

    let list = customers(&app).await;
    assert_eq!(list.len(), 3, "{list:#?}");
    let ada = by_name(&list, "Ada Lovelace");
    assert_eq!(ada["email"], "Ada@example.com", "normalised as by the API");
    assert_eq!(ada["phone"], "+12025550123");
    assert_eq!(ada["company"], "Engines, Ltd");
    assert_eq!(ada["lifecycleStage"], "CUSTOMER");
    assert_eq!(ada["tags"], json!(["vip", "math"]));
    assert_eq!(ada["customFields"], json!({"tier": 2}));
    assert_eq!(ada["version"], 1);
    assert_eq!(
        ada["owner"]["subject"], "crm-cli",
        "the operator, by default"
    );
    assert_eq!(
        ada["externalIds"],
        json!([{"source": "import", "externalId": "C-1"}])
    );
    let bob = by_name(&list, "Bob");
    assert_eq!(
        bob["email"],
        Value::Null,
        "an empty cell leaves the field out"
    );
    assert_eq!(
        bob["lifecycleStage"], "LEAD",
        "the default of createCustomer"
    );
    assert_eq!(bob["tags"], json!(["a", "b"]));
    let keyless = by_name(&list, "Keyless");
    assert_eq!(keyless["externalIds"], json!([]));
    assert_eq!(keyless["lifecycleStage"], "PROSPECT");

    // An event for each, as upsertCustomers leaves.
    let events = feed(&app, 3).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    for event in &events {
        assert_eq!(event["op"], "CREATED");
        assert_eq!(event["entity"], "CUSTOMER");
        assert!(list.iter().any(|c| c["id"] == event["entityId"]));
        assert!(
            event["changedFields"]
                .as_array()
                .expect("fields")
                .contains(&json!("name"))
        );
    }
    let ada_event = events
        .iter()
        .find(|e| e["entityId"] == ada["id"])
        .expect("Ada's event");
    assert!(
        ada_event["changedFields"]
            .as_array()
            .expect("fields")
            .contains(&json!("externalIds"))
    );

    // The same file again: the keyed rows are found unchanged, nothing written for them;
    // a row without a key is created again.
    let again = import(&app, &path, &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("rows read: 3, created: 1, updated: 0, unchanged: 2, rejected: 0"),
        "{}",
        again.stderr
    );
    assert_eq!(customers(&app).await.len(), 4);
    let events = feed(&app, 4).await;
    assert_eq!(events.len(), 4, "one event, for the new keyless customer");
    assert_eq!(
        by_name(&customers(&app).await, "Ada Lovelace")["version"],
        1
    );
}

#[tokio::test]
async fn a_json_lines_file_creates_then_updates_with_null_clearing() {
    let app = TestApp::spawn().await;
    let (_dir, path) = file(
        "customers.jsonl",
        br#"{"externalId": "J-1", "name": "Jane", "email": "jane@example.com", "company": "Acme", "tags": ["a"], "customFields": {"plan": "pro"}}
{"externalId": 42, "name": "Numbered", "lifecycleStage": "CHURNED"}
"#,
    );
    let ran = import(&app, &path, &["--source", "CRM2"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("created: 2"), "{}", ran.stderr);
    let list = customers(&app).await;
    let jane = by_name(&list, "Jane");
    assert_eq!(jane["company"], "Acme");
    assert_eq!(jane["customFields"], json!({"plan": "pro"}));
    assert_eq!(
        jane["externalIds"],
        json!([{"source": "crm2", "externalId": "J-1"}]),
        "sources compare without case, as in upsertCustomers"
    );
    assert_eq!(
        by_name(&list, "Numbered")["externalIds"][0]["externalId"],
        "42"
    );

    // An update: null clears, a key left out stays.
    let (_dir2, update) = file(
        "update.ndjson",
        br#"{"externalId": "J-1", "name": "Jane", "company": null, "email": "jane@example.org"}
{"externalId": "42", "name": "Numbered"}
"#,
    );
    let ran = import(&app, &update, &["--source", "crm2"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("created: 0, updated: 1, unchanged: 1"),
        "{}",
        ran.stderr
    );
    let list = customers(&app).await;
    let jane = by_name(&list, "Jane");
    assert_eq!(jane["company"], Value::Null);
    assert_eq!(jane["email"], "jane@example.org");
    assert_eq!(jane["tags"], json!(["a"]), "left out, kept");
    assert_eq!(jane["version"], 2);
    let events = feed(&app, 3).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[2]["op"], "UPDATED");
    assert_eq!(events[2]["entityId"], jane["id"]);
    assert_eq!(events[2]["changedFields"], json!(["company", "email"]));
}

#[tokio::test]
async fn columns_are_mapped_ignored_or_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let (_dir, path) = file(
        "people.csv",
        b"Full Name,E-mail,Internal Id,lifecycle_stage\nGrace,grace@example.com,77,lead\n",
    );
    let refused = import(&app, &path, &[]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    for needed in [
        "unknown columns `Full Name`, `Internal Id`",
        "the fields are: externalId, name, email, phone, company, lifecycleStage, ownerId, tags, customFields",
        "--map 'Full Name=FIELD'",
        "--map 'Internal Id='",
    ] {
        assert!(
            refused.stderr.contains(needed),
            "{needed}: {}",
            refused.stderr
        );
    }
    assert!(customers(&app).await.is_empty(), "nothing written");

    let mapped = import(
        &app,
        &path,
        &["--map", "Full Name=name", "--map", "Internal Id="],
    )
    .await;
    assert_eq!(mapped.code, 0, "{}", mapped.stderr);
    let list = customers(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Grace");
    assert_eq!(list[0]["email"], "grace@example.com");
    assert_eq!(list[0]["externalIds"], json!([]));

    // A map to no field, a map of no column, a file with no name: refused, naming why.
    let bad = import(&app, &path, &["--map", "Full Name=nickname"]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("`nickname` is no field"),
        "{}",
        bad.stderr
    );
    let unused = import(
        &app,
        &path,
        &[
            "--map",
            "Full Name=name",
            "--map",
            "Internal Id=",
            "--map",
            "Nope=",
        ],
    )
    .await;
    assert_eq!(unused.code, 1);
    assert!(unused.stderr.contains("`Nope`"), "{}", unused.stderr);
    let (_dir2, nameless) = file("nameless.csv", b"email\nx@example.com\n");
    let nameless = import(&app, &nameless, &[]).await;
    assert_eq!(nameless.code, 1);
    assert!(
        nameless.stderr.contains("no `name` column"),
        "{}",
        nameless.stderr
    );

    // JSON Lines keys too, before the first line is written.
    let (_dir3, lines) = file(
        "people.jsonl",
        b"{\"name\": \"First\"}\n{\"name\": \"Second\", \"nickname\": \"S\"}\n",
    );
    let refused = import(&app, &lines, &[]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("unknown column `nickname`"),
        "{}",
        refused.stderr
    );
    assert_eq!(customers(&app).await.len(), 1, "nothing more written");

    // What cannot be read at all.
    let missing = import(&app, Path::new("/nonexistent/file.csv"), &[]).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);
    let (_dir4, odd) = file("people.txt", b"name\nX\n");
    let odd = import(&app, &odd, &[]).await;
    assert_eq!(odd.code, 1);
    assert!(odd.stderr.contains("--format"), "{}", odd.stderr);
}

/// Good rows around every kind of bad one, each on a line of its own.
const MIXED: &[u8] = b"externalId,name,email,ownerId\n\
    G-1,Good One,one@example.com,\n\
    B-1,Bad Email,not-an-email,\n\
    G-2,Good Two,,\n\
    B-2,Too,many,fields,here\n\
    B-3,Nul\x00Name,,\n\
    B-4,Ghost Owner,,usr_01JD0000000000000000000000\n\
    G-1,Again,,\n\
    B-5,,,\n";

#[tokio::test]
async fn per_row_mode_writes_the_good_rows_and_names_the_bad_ones_by_line() {
    let app = TestApp::spawn().await;
    let (dir, path) = file("mixed.csv", MIXED);
    let rejects = dir.path().join("rejects.jsonl");
    let ran = import(&app, &path, &["--rejects", rejects.to_str().expect("path")]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    for needed in [
        "line 3: rejected (externalId \"B-1\"): email: is not a valid email address",
        "line 5: rejected: has 5 fields where the header has 4",
        "line 6: rejected (externalId \"B-3\"): name: must not contain control characters",
        "line 7: rejected (externalId \"B-4\"): ownerId: no such user",
        "line 8: rejected (externalId \"G-1\"): externalId: is given to an earlier row (line 2)",
        "line 9: rejected (externalId \"B-5\"): name: must not be empty",
        "rows read: 8, created: 2, updated: 0, unchanged: 0, rejected: 6",
        "6 rows rejected and skipped; the others were written",
    ] {
        assert!(ran.stderr.contains(needed), "{needed}:\n{}", ran.stderr);
    }
    let names: Vec<Value> = customers(&app)
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("Good One"), json!("Good Two")]);
    assert_eq!(feed(&app, 2).await.len(), 2);

    let written: Vec<Value> = std::fs::read_to_string(&rejects)
        .expect("the rejects file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(written.len(), 6);
    assert_eq!(
        written[0],
        json!({"line": 3, "externalId": "B-1", "errors": [
            {"field": ["email"], "message": "is not a valid email address", "code": "INVALID_EMAIL"}
        ]})
    );
    assert_eq!(written[1]["line"], 5);
    assert_eq!(written[1]["errors"][0]["field"], json!([]));
    assert_eq!(written[3]["errors"][0]["code"], "NOT_FOUND");
    assert_eq!(written[4]["errors"][0]["code"], "DUPLICATE");

    // --quiet keeps the summary and drops the lines.
    let quiet = import(&app, &path, &["--quiet"]).await;
    assert_eq!(quiet.code, 3);
    assert!(!quiet.stderr.contains("line 3"), "{}", quiet.stderr);
    assert!(
        quiet.stderr.contains("unchanged: 2, rejected: 6"),
        "{}",
        quiet.stderr
    );
}

#[tokio::test]
async fn all_or_nothing_writes_nothing_when_a_row_is_rejected() {
    let app = TestApp::spawn().await;
    let (_dir, path) = file("mixed.csv", MIXED);
    let ran = import(&app, &path, &["--all-or-nothing"]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(ran.stderr.contains("line 3: rejected"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("all or nothing: 6 rows rejected, so nothing was written"),
        "{}",
        ran.stderr
    );
    assert!(customers(&app).await.is_empty());
    assert!(feed(&app, 0).await.is_empty());

    let (_dir2, good) = file("good.csv", b"externalId,name\nA-1,Alpha\nA-2,Beta\n");
    let ran = import(&app, &good, &["--all-or-nothing"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(customers(&app).await.len(), 2);
    assert_eq!(feed(&app, 2).await.len(), 2);
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_dir, path) = file("mixed.csv", MIXED);
    let ran = import(&app, &path, &["--dry-run"]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    // The database's checks ran too: the owner that is no user.
    assert!(
        ran.stderr.contains("ownerId: no such user"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("rows read: 8, created: 2, updated: 0, unchanged: 0, rejected: 6"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("dry run: nothing was written"),
        "{}",
        ran.stderr
    );
    assert!(customers(&app).await.is_empty());
    assert!(feed(&app, 0).await.is_empty());

    let (_dir2, good) = file(
        "good.jsonl",
        b"{\"externalId\": \"D-1\", \"name\": \"Dry\"}\n",
    );
    let ran = import(&app, &good, &["--dry-run"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("created: 1"), "{}", ran.stderr);
    assert!(customers(&app).await.is_empty());
}

#[tokio::test]
async fn another_organizations_customers_and_keys_are_untouched() {
    let app = TestApp::spawn().await;
    let other_org = format!("{}-other", app.org);
    let theirs = app.token_for(&other_org, "user-9", ALL_SCOPES);
    let r = app
        .gql_as(
            Some(&theirs),
            "mutation { upsertCustomers(input: {source: \"import\", items: [{externalId: \"K-1\", name: \"Theirs\"}]}) { results { status } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("upsertCustomers.results.0.status"), "CREATED");

    let (_dir, path) = file("ours.csv", b"externalId,name\nK-1,Ours\n");
    let ran = import(&app, &path, &[]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("created: 1"), "{}", ran.stderr);
    let ours = customers(&app).await;
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["name"], "Ours");
    let list = customers_as(&app, &theirs).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Theirs");
    assert_eq!(list[0]["version"], 1);
    let r = app
        .gql_as(
            Some(&theirs),
            "{ changes(first: 10) { events { op } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("changes.events"), &json!([{"op": "CREATED"}]));
}

#[tokio::test]
async fn malformed_lines_are_rejected_rows_not_crashes() {
    let app = TestApp::spawn().await;
    let mut content = Vec::new();
    content.extend(b"{\"externalId\": \"M-1\", \"name\": \"Fine\"}\n");
    content.extend(b"{\"externalId\": \"M-2\", \"name\": \"Broken\"\n");
    content.extend(b"[1, 2]\n");
    content.extend(b"{\"externalId\": \"M-4\", \"name\": \"Nul\\u0000Byte\"}\n");
    content.extend(b"{\"externalId\": \"M-5\", \"name\": \"");
    content.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 1));
    content.extend(b"\"}\n");
    content.extend(b"{\"externalId\": \"M-6\", \"name\": \"Tags\", \"tags\": \"vip\"}\n");
    content.extend(b"{\"externalId\": \"M-7\", \"name\": \"");
    content.extend(std::iter::repeat_n(b'y', 300));
    content.extend(b"\"}\n");
    content.extend(b"{\"externalId\": \"M-8\", \"name\": \"Nul\", \"customFields\": {\"k\": [\"a\\u0000\"]}}\n");
    content.extend(b"\n{\"externalId\": \"M-10\", \"name\": \"Also fine\"}");
    let (_dir, path) = file("mixed.jsonl", &content);
    let ran = import(&app, &path, &[]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    for needed in [
        "line 2: rejected: is not valid JSON",
        "line 3: rejected: is not a JSON object",
        "line 4: rejected (externalId \"M-4\"): name: must not contain control characters",
        "line 5: rejected: is longer than 1 MiB",
        "line 6: rejected (externalId \"M-6\"): tags: must be an array of strings",
        "line 7: rejected (externalId \"M-7\"): name: must be at most 200 characters",
        "line 8: rejected (externalId \"M-8\"): customFields: must not contain NUL characters",
        "rows read: 9, created: 2, updated: 0, unchanged: 0, rejected: 7",
    ] {
        assert!(ran.stderr.contains(needed), "{needed}:\n{}", ran.stderr);
    }
    let list = customers(&app).await;
    let names: Vec<&Value> = list.iter().map(|c| &c["name"]).collect();
    assert_eq!(names, [&json!("Also fine"), &json!("Fine")]);
}

/// What a hostile review found: each refused cleanly, nothing written, the input intact.
#[tokio::test]
async fn hostile_files_and_flags_are_refused_without_harm() {
    let app = TestApp::spawn().await;
    // A rejects file that is the input (here through a symlink) would empty it.
    let (dir, path) = file("in.csv", b"externalId,name\nR1,Ann\n");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let ran = import(&app, &path, &["--rejects", link.to_str().expect("path")]).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("names the file being imported"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read(&path).expect("input"),
        b"externalId,name\nR1,Ann\n"
    );

    // One column mapped twice; an organization name with a stray space.
    let ran = import(&app, &path, &["--map", "name=name", "--map", "name=email"]).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("twice"), "{}", ran.stderr);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["import", path.to_str().expect("path"), "--org", " acme"])
        .args(["--database-url", &app.db_url])
        .output()
        .expect("crm runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(customers(&app).await.is_empty());

    // Keys that would arrive rounded, and an owner that cannot be an id.
    let (_dir, path) = file(
        "ids.jsonl",
        b"{\"externalId\": 12345678901234567890123, \"name\": \"Big\"}\n\
          {\"externalId\": 1.5, \"name\": \"Half\"}\n\
          {\"externalId\": 42, \"name\": \"Small\"}\n\
          {\"externalId\": \"o-1\", \"name\": \"Owned\", \"ownerId\": \"u\\u0000x\"}\n",
    );
    let ran = import(&app, &path, &[]).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    for needed in [
        "line 1: rejected: externalId: must be a string, or an integer of at most 64 bits",
        "line 2: rejected: externalId: must be a string, or an integer of at most 64 bits",
        "line 4: rejected (externalId \"o-1\"): ownerId: must not contain control characters",
    ] {
        assert!(ran.stderr.contains(needed), "{needed}:\n{}", ran.stderr);
    }
    let names: Vec<Value> = customers(&app)
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("Small")]);
}
