//! Validation once per document. async-graphql checks every request against all of the
//! GraphQL validation rules, which was a fifth of the instructions of a point read, though
//! clients send the same few documents over and over. Whether a document's selections,
//! fragments, arguments and variable declarations are valid does not depend on the
//! request; only the values of its variables do. So the first request with a document runs
//! on a schema that checks every rule, and once one has passed, later requests with that
//! document run on one that checks only what it must (fragment cycles, depth, complexity)
//! as long as their variables are values this module can vouch for. Any other request runs
//! the full rules, so its errors are the ones it always had.
//! (async-graphql validates a selection whether or not `@skip`/`@include` will leave it out,
//! so conditions on variables change nothing here; `tests/api/http_spec.rs` checks both.)

use async_graphql::parser::types::{BaseType, OperationDefinition, Type};
use async_graphql::{Response, Value, Variables};

use super::limits::Parsed;

/// Whether a request must run every validation rule: its document has not passed them yet,
/// or one of its variables is of a type or value checked here only by them.
pub fn needs_every_rule(
    parsed: &Parsed,
    operation: Option<&OperationDefinition>,
    variables: &Variables,
) -> bool {
    if !parsed.validated() {
        return true;
    }
    let Some(operation) = operation else {
        return true;
    };
    !operation.variable_definitions.iter().all(|definition| {
        let definition = &definition.node;
        let value = variables
            .get(&definition.name.node)
            .filter(|v| **v != Value::Null);
        // A variable with a default may stand where null is not allowed (the default then
        // takes its place), so a null given for it is for the full rules to refuse.
        match value {
            None if definition.default_value.is_some() => false,
            value => fits(&definition.var_type.node, value),
        }
    })
}

/// Whether `value` is valid for a variable of type `ty`, for the built-in scalars (not
/// lists, input objects, enums or custom scalars, which are left to the full rules; a
/// `false` only costs the full rules). Defaults are already in `variables` (`limits::admit`
/// puts them there), so a variable without a value has none.
/// (`None`: null or no value.)
fn fits(ty: &Type, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return ty.nullable;
    };
    let BaseType::Named(name) = &ty.base else {
        return false;
    };
    match (name.as_str(), value) {
        ("ID" | "String", Value::String(_)) => true,
        ("Int", Value::Number(n)) => n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        ("Float", Value::Number(n)) => n.as_f64().is_some_and(f64::is_finite),
        ("Boolean", Value::Boolean(_)) => true,
        _ => false,
    }
}

/// Whether a response is a refusal before execution (validation among them), as opposed
/// to one that executed: such a response has no data and errors without a path. One that
/// executed but whose data is null for another reason (a failed non-null root field) is
/// taken for a refusal too, which only means its document is validated again next time.
pub fn refused(response: &Response) -> bool {
    response.data == Value::Null && !response.errors.is_empty()
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails loudly")]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn needs(query: &str, validated: bool, variables: serde_json::Value) -> bool {
        let doc = parse_query(query).expect("parses");
        let parsed = Parsed::new(doc);
        if validated {
            parsed.mark_validated();
        }
        let operation = parsed
            .doc
            .operations
            .iter()
            .next()
            .map(|(_, op)| op.node.clone());
        needs_every_rule(
            &parsed,
            operation.as_ref(),
            &Variables::from_json(variables),
        )
    }

    #[test]
    fn a_new_document_runs_every_rule() {
        assert!(needs("{ __typename }", false, serde_json::json!({})));
        assert!(!needs("{ __typename }", true, serde_json::json!({})));
    }

    #[test]
    fn variables_of_built_in_scalars_are_vouched_for_by_value() {
        let q = "query($id: ID!, $n: Int, $s: String, $f: Float, $b: Boolean) { __typename }";
        let ok = serde_json::json!({"id": "cus_1", "n": 5, "s": "x", "f": 1.5, "b": true});
        assert!(!needs(q, true, ok));
        assert!(!needs(q, true, serde_json::json!({"id": "cus_1"})));
        // A null for a variable with a default (which may stand where null may not).
        let defaulted = "query($b: Boolean = true) { __typename @include(if: $b) }";
        assert!(!needs(defaulted, true, serde_json::json!({"b": false})));
        assert!(needs(defaulted, true, serde_json::json!({"b": null})));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"id": null}),
            serde_json::json!({"id": 7}),
            serde_json::json!({"id": "a", "n": 3_000_000_000_u64}),
            serde_json::json!({"id": "a", "n": 1.5}),
            serde_json::json!({"id": "a", "s": 1}),
            serde_json::json!({"id": "a", "b": "true"}),
            serde_json::json!({"id": "a", "f": "1"}),
        ] {
            assert!(needs(q, true, bad.clone()), "{bad}");
        }
    }

    #[test]
    fn other_variable_types_run_every_rule_when_given() {
        for (q, value) in [
            ("query($v: [ID!]) { __typename }", serde_json::json!(["a"])),
            (
                "query($v: CustomerFilterInput) { __typename }",
                serde_json::json!({}),
            ),
            (
                "query($v: LifecycleStage) { __typename }",
                serde_json::json!("LEAD"),
            ),
            (
                "query($v: DateTime) { __typename }",
                serde_json::json!("2026-01-01T00:00:00Z"),
            ),
        ] {
            assert!(needs(q, true, serde_json::json!({ "v": value })), "{q}");
            // Left out, a nullable variable is null, whatever its type.
            assert!(!needs(q, true, serde_json::json!({})), "{q}");
        }
    }
}
