//! Customer input rules. Every violation of one input is reported at once.

use std::collections::HashSet;

use serde_json::Value;

use super::{CustomerPatch, LifecycleStage, NewCustomer, NewExternalId, NewSocialProfile};
use crate::domain::validate::{self as v, Violations};
use crate::domain::{FieldViolation, Result, ViolationCode};

pub const NAME_MAX: usize = 200;
pub const COMPANY_MAX: usize = 200;
pub const MAX_LINKS: usize = 20;

/// A new customer with every field in its stored form.
pub struct ValidCustomer {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Value,
    pub external_ids: Vec<NewExternalId>,
    pub social_profiles: Vec<NewSocialProfile>,
}

pub fn new_customer(input: NewCustomer) -> Result<ValidCustomer> {
    let mut errs = Violations::default();
    let valid = ValidCustomer {
        name: errs.take(v::required_text("name", &input.name, NAME_MAX)),
        email: errs.take(v::email("email", input.email.as_deref())),
        phone: errs.take(v::phone("phone", input.phone.as_deref())),
        company: errs.take(v::optional_text(
            "company",
            input.company.as_deref(),
            COMPANY_MAX,
        )),
        lifecycle_stage: input.lifecycle_stage.unwrap_or(LifecycleStage::Lead),
        owner_id: match input.owner_id {
            Some(owner) => errs.take(owner_id(&owner)),
            None => None,
        },
        tags: errs.take(v::tags("tags", &input.tags)),
        custom_fields: match input.custom_fields {
            Some(raw) => errs.take(v::custom_fields("customFields", raw)),
            None => Value::Object(Default::default()),
        },
        external_ids: errs.take(external_ids(input.external_ids)),
        social_profiles: errs.take(social_profiles(input.social_profiles)),
    };
    errs.finish()?;
    Ok(valid)
}

/// The patch with every given field in its stored form.
pub fn patch(mut input: CustomerPatch) -> Result<CustomerPatch> {
    let mut errs = Violations::default();
    if let Some(name) = &input.name {
        input.name = Some(errs.take(v::required_text("name", name, NAME_MAX)));
    }
    if let Some(email) = &input.email {
        input.email = Some(errs.take(v::email("email", email.as_deref())));
    }
    if let Some(phone) = &input.phone {
        input.phone = Some(errs.take(v::phone("phone", phone.as_deref())));
    }
    if let Some(company) = &input.company {
        input.company =
            Some(errs.take(v::optional_text("company", company.as_deref(), COMPANY_MAX)));
    }
    if let Some(Some(owner)) = &input.owner_id {
        input.owner_id = Some(errs.take(owner_id(owner)));
    }
    if let Some(tags) = &input.tags {
        input.tags = Some(errs.take(v::tags("tags", tags)));
    }
    if let Some(fields) = input.custom_fields.take() {
        input.custom_fields = Some(errs.take(v::custom_fields("customFields", fields)));
    }
    if let Some(ids) = input.external_ids.take() {
        input.external_ids = Some(errs.take(external_ids(ids)));
    }
    if let Some(profiles) = input.social_profiles.take() {
        input.social_profiles = Some(errs.take(social_profiles(profiles)));
    }
    errs.finish()?;
    Ok(input)
}

/// An owner is a user's id, looked up afterwards: text that cannot be one (control
/// characters, NUL, far too long) is refused before it reaches the database.
fn owner_id(raw: &str) -> v::Parsed<Option<String>> {
    v::required_text("ownerId", raw, 64).map(Some)
}

fn too_many(field: &str) -> FieldViolation {
    FieldViolation::new(
        &[field],
        ViolationCode::TooMany,
        format!("at most {MAX_LINKS} entries"),
    )
}

fn external_ids(raw: Vec<NewExternalId>) -> v::Parsed<Vec<NewExternalId>> {
    if raw.len() > MAX_LINKS {
        return Err(too_many("externalIds"));
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, x)| {
            let at = |violation: FieldViolation| {
                violation.under(&["externalIds".to_owned(), i.to_string()])
            };
            let parsed = NewExternalId {
                // Lower-cased first, then measured: some letters grow when lower-cased.
                source: v::required_text("source", &x.source.to_lowercase(), 64).map_err(at)?,
                external_id: v::required_text("externalId", &x.external_id, 255).map_err(at)?,
            };
            if !seen.insert((parsed.source.clone(), parsed.external_id.clone())) {
                return Err(at(FieldViolation::new(
                    &["externalId"],
                    ViolationCode::Duplicate,
                    "is listed twice",
                )));
            }
            Ok(parsed)
        })
        .collect()
}

fn social_profiles(raw: Vec<NewSocialProfile>) -> v::Parsed<Vec<NewSocialProfile>> {
    if raw.len() > MAX_LINKS {
        return Err(too_many("socialProfiles"));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let at = |violation: FieldViolation| {
                violation.under(&["socialProfiles".to_owned(), i.to_string()])
            };
            let url = v::optional_text("url", p.url.as_deref(), 2048).map_err(at)?;
            if let Some(url) = &url {
                let ok = url::Url::parse(url)
                    .map(|u| matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(false);
                if !ok {
                    return Err(at(FieldViolation::new(
                        &["url"],
                        ViolationCode::Invalid,
                        "must be an http(s) URL",
                    )));
                }
            }
            Ok(NewSocialProfile {
                // Lower-cased first, then measured: some letters grow when lower-cased.
                network: v::required_text("network", &p.network.to_lowercase(), 32).map_err(at)?,
                handle: v::required_text("handle", &p.handle, 255).map_err(at)?,
                network_user_id: v::optional_text(
                    "networkUserId",
                    p.network_user_id.as_deref(),
                    255,
                )
                .map_err(at)?,
                url,
            })
        })
        .collect()
}
