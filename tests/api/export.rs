//! `crm export` as an operator runs it against a server's database: every customer and
//! activity of one organization (the trash included), nothing of another.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn export(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("export")
        .args(["--org", &app.org, "--database-url", &app.db_url])
        .args(args)
        .output()
        .expect("crm runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_organization_exports_whole_as_json_lines_and_csv() {
    let app = TestApp::spawn().await;
    let ada = app
        .customer(
            json!({"name": "Ada, \"the\" first", "email": "ada@example.com", "tags": ["vip"]}),
        )
        .await;
    let gone = app.customer(json!({"name": "Gone"})).await;
    app.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { message } } }",
        json!({"id": gone}),
    )
    .await
    .assert_ok();
    app.activity(json!({"customerId": ada, "kind": "NOTE", "subject": "Hello\nthere"}))
        .await;
    // Another tenant's customer on the same database.
    let other = app.token_for("another-org", "user-1", crate::helpers::ALL_SCOPES);
    app.gql_as(
        Some(&other),
        "mutation { createCustomer(input: {name: \"Elsewhere\"}) { customer { id } } }",
        json!({}),
    )
    .await
    .assert_ok();

    let (ok, out, err) = export(&app, &[]);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    let customers: Vec<&Value> = lines.iter().filter(|l| l["entity"] == "customer").collect();
    assert_eq!(customers.len(), 2);
    assert!(
        customers
            .iter()
            .any(|c| c["id"] == ada.as_str() && c["email"] == "ada@example.com")
    );
    assert!(
        customers
            .iter()
            .any(|c| c["id"] == gone.as_str() && c["deletedAt"].is_string())
    );
    assert!(lines.iter().all(|l| l.get("orgId").is_none()));
    assert!(!out.contains("Elsewhere"));
    let activity = lines
        .iter()
        .find(|l| l["entity"] == "activity")
        .expect("activity");
    assert_eq!(activity["subject"], "Hello\nthere");
    assert_eq!(activity["customerId"], ada.as_str());

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("customers.csv");
    let (ok, _, err) = export(
        &app,
        &[
            "--format",
            "csv",
            "--entities",
            "customers",
            "--output",
            file.to_str().expect("path"),
        ],
    );
    assert!(ok, "{err}");
    let mut reader = csv::Reader::from_path(&file).expect("CSV");
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[0], "id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    let name_at = headers
        .iter()
        .position(|h| h == "name")
        .expect("name column");
    let tags_at = headers
        .iter()
        .position(|h| h == "tags")
        .expect("tags column");
    let first = rows.iter().find(|r| r[0] == ada).expect("ada");
    assert_eq!(&first[name_at], "Ada, \"the\" first");
    assert_eq!(&first[tags_at], "[\"vip\"]");

    // A cell a spreadsheet would run as a formula is quoted as text.
    app.customer(json!({"name": "=HYPERLINK(\"http://evil.example\")", "company": "+cmd"}))
        .await;
    let (ok, out, err) = export(&app, &["--format", "csv", "--entities", "customers"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("'=HYPERLINK") && out.contains("'+cmd"),
        "{out}"
    );

    let (ok, _, err) = export(&app, &["--format", "csv"]);
    assert!(!ok && err.contains("--entities"), "{err}");
}
