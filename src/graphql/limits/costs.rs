//! What a request costs, from what the schema declares beside each field, in the notation of
//! the GraphQL cost directive specification (used by Apollo's demand control):
//! `@cost(weight:)` for a field that does its own work (one SQL statement is 100, a write
//! 500), and `@listSize(assumedSize:, slicingArguments:, sizedFields:)` for a field that
//! returns many. A connection's page size multiplies what is selected under `nodes` and
//! `edges`, not its `totalCount` or `pageInfo`; rows that dataloaders fetch for all parents in
//! one statement cost per row, not per statement. Introspection pays for the types it lists.
//!
//! An input field may declare `@cost(weight:)` too: it is charged for each value given to it,
//! each element of a list (as Apollo's demand control scores arguments), once per place in
//! the document. That is how a bulk write pays per item it writes (`upsertCustomers`'
//! `items`). A slicing argument may name a field inside an input object with a dotted path
//! (`input.items`), and a list given there sizes the field like a number would.
//!
//! The document is measured once, each fragment once (a fragment spread a million times
//! costs one lookup per spread), before any of async-graphql's own checks expand fragments.

// The tables are keyed by the schema's own names and read for every field of every
// request; a hasher built for short trusted keys costs a fraction of the default one.
use rustc_hash::FxHashMap as HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, Field, Selection, SelectionSet, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, Pos, TypeDirective, Variables};
use async_graphql_value::{ConstValue, Value};

use super::scan::check_literal;
use super::{MAX_DOCUMENT_NESTING, MAX_SELECTIONS, Rejection};

/// What one `__schema` costs: it lists every type with its fields and arguments.
pub const SCHEMA_INTROSPECTION_COST: usize = 5_000;
/// What one `__type(name:)` costs.
pub const TYPE_INTROSPECTION_COST: usize = 50;
/// The most introspection lists one path may nest: the standard introspection query nests
/// three (`types { fields { args } }`); each more multiplies the answer (`possibleTypes {
/// interfaces { possibleTypes … } }` triples per level).
pub const MAX_INTROSPECTION_LISTS: usize = 3;
/// A field that runs an SQL statement of its own (a root lookup or list, a count).
pub const STATEMENT: i32 = 100;
/// A mutation: a transaction of several statements and an event.
pub const WRITE: i32 = 500;
/// One row written by a bulk write, beside the `WRITE` its mutation pays once: its own
/// insert or update and its event, in a transaction and after look-ups the mutation shares
/// among all its rows. 1,000 rows cost 20,000: with the mutation and a small selection of
/// results, a full batch fits in the default 50,000.
pub const ROW_WRITE: i32 = 20;
/// The page size of a connection asked for without `first` or `last`.
pub const DEFAULT_PAGE: i32 = 20;

#[TypeDirective(
    name = "cost",
    location = "FieldDefinition",
    location = "InputFieldDefinition"
)]
pub fn cost(weight: i32) {}

#[TypeDirective(name = "listSize", location = "FieldDefinition")]
pub fn list_size(
    assumed_size: Option<i32>,
    slicing_arguments: Option<Vec<String>>,
    sized_fields: Option<Vec<String>>,
) {
}

/// The slicing arguments of a connection's `@listSize`.
pub fn page_slicing() -> Vec<String> {
    vec!["first".into(), "last".into()]
}

/// The fields of a connection whose cost its page size multiplies.
pub fn page_items() -> Vec<String> {
    vec!["edges".into(), "nodes".into()]
}

#[derive(Debug, Default)]
struct ListSize {
    assumed: usize,
    slicing: Vec<String>,
    /// Empty: the field's own children are multiplied.
    sized: Vec<String>,
}

#[derive(Debug)]
struct FieldCost {
    weight: usize,
    returns: String,
    list: Option<ListSize>,
    /// Arguments whose values carry a cost (`@cost` on input fields), with their input type.
    costly_arguments: Arguments,
}

/// Arguments (or input fields) by name, with their input types.
type Arguments = Vec<(String, String)>;

/// An input field: what each value given to it costs, and its input type.
#[derive(Debug)]
struct InputFieldCost {
    weight: usize,
    ty: String,
}

/// Every field's declared cost and return type, read from the schema's own SDL.
#[derive(Debug, Default)]
pub struct CostTable {
    fields: HashMap<String, HashMap<String, FieldCost>>,
    /// Input types that hold a field with a `@cost`, directly or through other input types:
    /// their fields.
    costly_inputs: HashMap<String, HashMap<String, InputFieldCost>>,
}

fn int_argument(
    directive: &async_graphql::parser::types::ConstDirective,
    name: &str,
) -> Option<usize> {
    match &directive.get_argument(name)?.node {
        ConstValue::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

fn strings_argument(
    directive: &async_graphql::parser::types::ConstDirective,
    name: &str,
) -> Vec<String> {
    match directive.get_argument(name).map(|v| &v.node) {
        Some(ConstValue::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                ConstValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl CostTable {
    pub fn from_sdl(sdl: &str) -> Self {
        let mut table = Self::default();
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return table;
        };
        let named = super::super::permissions::named_type;
        let mut inputs: HashMap<String, HashMap<String, InputFieldCost>> = HashMap::default();
        // (type, field, arguments with their input types)
        let mut arguments: Vec<(String, String, Arguments)> = Vec::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(ty) = def else {
                continue;
            };
            let ty = ty.node;
            let fields = match &ty.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .iter()
                        .map(|field| {
                            let field = &field.node;
                            let weight = field
                                .directives
                                .iter()
                                .find(|d| d.node.name.node == "cost")
                                .and_then(|d| int_argument(&d.node, "weight"))
                                .unwrap_or(0);
                            let ty = named(&field.ty.node).to_owned();
                            (field.name.node.to_string(), InputFieldCost { weight, ty })
                        })
                        .collect();
                    inputs.insert(ty.name.node.to_string(), fields);
                    continue;
                }
                _ => continue,
            };
            let entry = table.fields.entry(ty.name.node.to_string()).or_default();
            for field in fields {
                let field = &field.node;
                let mut declared = FieldCost {
                    weight: 1,
                    returns: named(&field.ty.node).to_owned(),
                    list: None,
                    costly_arguments: Vec::new(),
                };
                for directive in &field.directives {
                    let directive = &directive.node;
                    match directive.name.node.as_str() {
                        "cost" => declared.weight = int_argument(directive, "weight").unwrap_or(1),
                        "listSize" => {
                            declared.list = Some(ListSize {
                                assumed: int_argument(directive, "assumedSize").unwrap_or(1),
                                slicing: strings_argument(directive, "slicingArguments"),
                                sized: strings_argument(directive, "sizedFields"),
                            })
                        }
                        _ => {}
                    }
                }
                entry.insert(field.name.node.to_string(), declared);
                arguments.push((
                    ty.name.node.to_string(),
                    field.name.node.to_string(),
                    field
                        .arguments
                        .iter()
                        .map(|a| {
                            let a = &a.node;
                            (a.name.node.to_string(), named(&a.ty.node).to_owned())
                        })
                        .collect(),
                ));
            }
        }
        // The input types that reach a weighted field, directly or through other inputs.
        let mut costly: std::collections::HashSet<String> = inputs
            .iter()
            .filter(|(_, fields)| fields.values().any(|f| f.weight > 0))
            .map(|(name, _)| name.clone())
            .collect();
        loop {
            let before = costly.len();
            for (name, fields) in &inputs {
                if fields.values().any(|f| costly.contains(&f.ty)) {
                    costly.insert(name.clone());
                }
            }
            if costly.len() == before {
                break;
            }
        }
        for (ty, field, args) in arguments {
            let args: Arguments = args
                .into_iter()
                .filter(|(_, arg_type)| costly.contains(arg_type))
                .collect();
            if let Some(declared) = table.fields.get_mut(&ty).and_then(|f| f.get_mut(&field)) {
                declared.costly_arguments = args;
            }
        }
        table.costly_inputs = inputs
            .into_iter()
            .filter(|(name, _)| costly.contains(name))
            .collect();
        table
    }

    fn field(&self, ty: &str, field: &str) -> Option<&FieldCost> {
        self.fields.get(ty)?.get(field)
    }
}

/// What a selection set asks for, fragments expanded.
#[derive(Clone, Copy, Default, Debug)]
pub struct Measure {
    /// Fields, arguments and directives, fragments expanded.
    pub selections: usize,
    /// Nesting of fields, not counting what lies under `__schema` / `__type`.
    pub depth: usize,
    /// What the rows cost: multiplied by the size of every list they are in.
    pub cost: usize,
    /// What statements cost: once per place in the document, because a field under a list
    /// is loaded for every parent at once (a dataloader's one statement per level).
    pub flat: usize,
    /// The most introspection lists (`types`, `fields`, `possibleTypes`…) nested in one
    /// another: each multiplies what is inside it.
    pub lists: usize,
}

impl Measure {
    pub fn add(&mut self, other: Measure) {
        self.selections = self.selections.saturating_add(other.selections);
        self.depth = self.depth.max(other.depth);
        self.cost = self.cost.saturating_add(other.cost);
        self.flat = self.flat.saturating_add(other.flat);
        self.lists = self.lists.max(other.lists);
    }

    /// The whole cost.
    pub fn total(&self) -> usize {
        self.cost.saturating_add(self.flat)
    }
}

/// The fields of the introspection types: what each returns, and whether it is a list.
fn introspection_field(parent: &str, field: &str) -> Option<(&'static str, bool)> {
    Some(match (parent, field) {
        (_, "__schema") => ("__Schema", false),
        (_, "__type") => ("__Type", false),
        ("__Schema", "types") => ("__Type", true),
        ("__Schema", "queryType" | "mutationType" | "subscriptionType") => ("__Type", false),
        ("__Schema", "directives") => ("__Directive", true),
        ("__Type", "fields") => ("__Field", true),
        ("__Type", "interfaces" | "possibleTypes") => ("__Type", true),
        ("__Type", "enumValues") => ("__EnumValue", true),
        ("__Type", "inputFields") => ("__InputValue", true),
        ("__Type", "ofType") => ("__Type", false),
        ("__Field" | "__Directive", "args") => ("__InputValue", true),
        ("__Field" | "__InputValue", "type") => ("__Type", false),
        _ => return None,
    })
}

/// A refusal, and the part of the document at fault when there is one.
pub type Refused = (Rejection, Option<Pos>);

pub struct Measurer<'a> {
    pub doc: &'a ExecutableDocument,
    pub table: &'a CostTable,
    pub variables: &'a Variables,
    // Keyed by the client's names: the default hasher resists chosen collisions.
    fragments: std::collections::HashMap<&'a Name, Measure>,
    visiting: Vec<&'a Name>,
}

/// An input value: written in the document, or a variable's.
#[derive(Clone, Copy)]
enum Given<'v> {
    Doc(&'v Value),
    Var(&'v ConstValue),
}

/// Children of a list field whose cost its size multiplies: all of them, or only those
/// named (a connection's `nodes` and `edges`).
#[derive(Clone, Copy)]
pub struct Sized<'s> {
    fields: &'s [String],
    size: usize,
}

impl<'a> Measurer<'a> {
    pub fn new(
        doc: &'a ExecutableDocument,
        table: &'a CostTable,
        variables: &'a Variables,
    ) -> Self {
        Self {
            doc,
            table,
            variables,
            fragments: std::collections::HashMap::default(),
            visiting: Vec::new(),
        }
    }

    /// The value at a dotted path of a field's arguments (`first`, `input.items`), looking
    /// through variables, without copying it.
    fn argument_at(&self, field: &'a Field, path: &str) -> Option<Given<'a>> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        let (_, value) = field
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == first)?;
        let mut at = self.resolve(Given::Doc(&value.node))?;
        for part in parts {
            at = match at {
                Given::Doc(Value::Object(map)) => self.resolve(Given::Doc(map.get(part)?))?,
                Given::Var(ConstValue::Object(map)) => Given::Var(map.get(part)?),
                _ => return None,
            };
        }
        Some(at)
    }

    /// A value of the document, or the variable it names.
    fn resolve(&self, given: Given<'a>) -> Option<Given<'a>> {
        match given {
            Given::Doc(Value::Variable(name)) => self.variables.get(name).map(Given::Var),
            other => Some(other),
        }
    }

    /// The size a list field will have: its slicing argument (a number, or a list's
    /// length), else the size it is assumed to have.
    fn list_size(&self, field: &'a Field, list: &ListSize) -> usize {
        for name in &list.slicing {
            let number = |n: &async_graphql::Number| {
                n.as_u64()
                    .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
            };
            match self.argument_at(field, name) {
                Some(Given::Doc(Value::Number(n)) | Given::Var(ConstValue::Number(n))) => {
                    return number(n);
                }
                Some(Given::Doc(Value::List(items))) => return items.len(),
                Some(Given::Var(ConstValue::List(items))) => return items.len(),
                _ => {}
            }
        }
        list.assumed
    }

    /// What the values given to a field's arguments cost (`@cost` on input fields).
    fn arguments_cost(&self, field: &'a Field, declared: &FieldCost) -> usize {
        let mut total = 0usize;
        for (name, ty) in &declared.costly_arguments {
            if let Some(given) = self.argument_at(field, name) {
                total = total.saturating_add(self.input_cost(ty, given));
            }
        }
        total
    }

    /// What a value of input type `ty` costs: the weight of each field it gives, for each
    /// value given (each element of a list), and what those values hold in turn. Values nest
    /// at most `MAX_VALUE_NESTING` levels (checked before), which bounds the recursion.
    fn input_cost(&self, ty: &str, given: Given<'a>) -> usize {
        let Some(fields) = self.table.costly_inputs.get(ty) else {
            return 0;
        };
        let Some(given) = self.resolve(given) else {
            return 0;
        };
        let mut total = 0usize;
        let mut field_cost = |name: &str, value: Given<'a>| {
            let Some(field) = fields.get(name) else {
                return;
            };
            let Some(value) = self.resolve(value) else {
                return;
            };
            let count = match value {
                Given::Doc(Value::Null) | Given::Var(ConstValue::Null) => 0,
                Given::Doc(Value::List(items)) => items.len(),
                Given::Var(ConstValue::List(items)) => items.len(),
                _ => 1,
            };
            total = total
                .saturating_add(field.weight.saturating_mul(count))
                .saturating_add(self.input_cost(&field.ty, value));
        };
        match given {
            Given::Doc(Value::Object(map)) => {
                for (name, value) in map {
                    field_cost(name.as_str(), Given::Doc(value));
                }
            }
            Given::Var(ConstValue::Object(map)) => {
                for (name, value) in map {
                    field_cost(name.as_str(), Given::Var(value));
                }
            }
            Given::Doc(Value::List(items)) => {
                for item in items {
                    total = total.saturating_add(self.input_cost(ty, Given::Doc(item)));
                }
            }
            Given::Var(ConstValue::List(items)) => {
                for item in items {
                    total = total.saturating_add(self.input_cost(ty, Given::Var(item)));
                }
            }
            _ => {}
        }
        total
    }

    fn field(
        &mut self,
        parent: &str,
        field: &'a Field,
        sized: Option<Sized<'_>>,
    ) -> Result<Measure, Refused> {
        for (name, value) in &field.arguments {
            let what = || format!("argument `{}` of `{}`", name.node, field.name.node);
            check_literal(&value.node, 0, &what).map_err(|r| (r, Some(value.pos)))?;
        }
        let name = field.name.node.as_str();
        let (flat, counts_depth) = match name {
            "__schema" => (SCHEMA_INTROSPECTION_COST, false),
            "__type" => (TYPE_INTROSPECTION_COST, false),
            _ => (0, true),
        };
        let table: &'a CostTable = self.table;
        let declared = table.field(parent, name);
        let introspection = introspection_field(parent, name);
        let returns = match (declared, introspection) {
            (Some(d), _) => d.returns.as_str(),
            (None, Some((returns, _))) => returns,
            (None, None) => "",
        };
        let mut inner = match declared.and_then(|d| d.list.as_ref()) {
            Some(list) => {
                let size = self.list_size(field, list);
                if list.sized.is_empty() {
                    let mut one = self.selection_set(returns, &field.selection_set.node, None)?;
                    one.cost = one.cost.saturating_mul(size);
                    one
                } else {
                    let sized = Sized {
                        fields: &list.sized,
                        size,
                    };
                    self.selection_set(returns, &field.selection_set.node, Some(sized))?
                }
            }
            None => self.selection_set(returns, &field.selection_set.node, None)?,
        };
        if introspection.is_some_and(|(_, list)| list) {
            inner.lists += 1;
        }
        if matches!(name, "__schema" | "__type") && inner.lists > MAX_INTROSPECTION_LISTS {
            return Err((Rejection::IntrospectionTooDeep, Some(field.name.pos)));
        }
        // A declared `@cost` is a statement, run once for all parents; every field also
        // costs 1 per row it appears in. What its arguments carry is paid once too.
        let statement = declared.map_or(0, |d| if d.weight > 1 { d.weight } else { 0 });
        let statement =
            statement.saturating_add(declared.map_or(0, |d| self.arguments_cost(field, d)));
        let mut rows = inner.cost.saturating_add(1);
        if let Some(sized) = sized
            && sized.fields.iter().any(|f| f == name)
        {
            rows = rows.saturating_mul(sized.size);
        }
        Ok(Measure {
            selections: inner
                .selections
                .saturating_add(1 + field.arguments.len() + field.directives.len()),
            depth: if counts_depth { inner.depth + 1 } else { 0 },
            cost: rows,
            flat: inner.flat.saturating_add(flat).saturating_add(statement),
            lists: inner.lists,
        })
    }

    pub fn selection_set(
        &mut self,
        ty: &str,
        set: &'a SelectionSet,
        sized: Option<Sized<'_>>,
    ) -> Result<Measure, Refused> {
        let mut total = Measure::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => total.add(self.field(ty, &field.node, sized)?),
                Selection::InlineFragment(inline) => {
                    let ty = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(ty, |c| c.node.on.node.as_str());
                    total.add(self.selection_set(ty, &inline.node.selection_set.node, sized)?);
                }
                Selection::FragmentSpread(spread) => {
                    let mut measure = self.fragment(&spread.node.fragment_name.node, sized)?;
                    measure.selections = measure.selections.saturating_add(1);
                    total.add(measure);
                }
            }
            if total.selections > MAX_SELECTIONS {
                return Err((Rejection::TooManySelections, Some(selection.pos)));
            }
        }
        Ok(total)
    }

    /// A fragment, measured once. Inside a connection's own selection (`sized`), where the
    /// same fragment can cost differently, it is measured where it is spread.
    pub fn fragment(
        &mut self,
        name: &'a Name,
        sized: Option<Sized<'_>>,
    ) -> Result<Measure, Refused> {
        if sized.is_none()
            && let Some(known) = self.fragments.get(name)
        {
            return Ok(*known);
        }
        if self.visiting.contains(&name) {
            return Err((Rejection::FragmentCycle(name.to_string()), None));
        }
        // Unknown fragments are the validator's to report.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(Measure::default());
        };
        if self.visiting.len() >= MAX_DOCUMENT_NESTING {
            return Err((Rejection::DocumentTooDeep, Some(fragment.pos)));
        }
        let ty = fragment.node.type_condition.node.on.node.as_str();
        self.visiting.push(name);
        let measure = self.selection_set(ty, &fragment.node.selection_set.node, sized);
        self.visiting.pop();
        let measure = measure?;
        if sized.is_none() {
            self.fragments.insert(name, measure);
        }
        Ok(measure)
    }
}
