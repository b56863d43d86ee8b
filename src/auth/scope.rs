use std::fmt;
use std::str::FromStr;

/// A permission a token may carry in its space-separated `scope` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    CustomersRead,
    CustomersWrite,
    ActivitiesRead,
    ActivitiesWrite,
    /// Email, phone and social handles.
    PiiRead,
    WebhooksManage,
    ClientsManage,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::ActivitiesRead,
        Scope::ActivitiesWrite,
        Scope::PiiRead,
        Scope::WebhooksManage,
        Scope::ClientsManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::ActivitiesRead => "activities:read",
            Scope::ActivitiesWrite => "activities:write",
            Scope::PiiRead => "pii:read",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::ClientsManage => "clients:manage",
        }
    }

    /// Every scope, space-separated: what a development token gets by default.
    pub fn all_joined() -> String {
        Self::ALL.map(Scope::as_str).join(" ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}
