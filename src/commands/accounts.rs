//! `xCommand AdminAccountAdd`, `AdminAccountDelete` (the product's names and parameters:
//! `Name:`, `Password:`, `Access: <AccountDisabled/ReadOnly/ReadWrite>`, `AdminAccountId:`),
//! and this build's `AdminAccountModify` and `AdminAccountList`. The accounts live in
//! `config/accounts` ([`crate::accounts`]), not in the configuration: these commands change no
//! configuration generation and take part in no batch transaction.
//!
//! Every change is audited (user, client address, session and front end); a password is
//! written `***`, never its value. This room knows no HTTP and no terminal.

use super::{failed, ok, param, require_write};
use crate::accounts::{Access, Account, AccountError, Accounts, Modify, MASK};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;

/// The commands answered here.
pub const HANDLERS: &[crate::engine::Entry] = &[
    crate::engine::Entry::new("AdminAccountAdd", admin_account_add),
    crate::engine::Entry::new("AdminAccountDelete", admin_account_delete),
    crate::engine::Entry::new("AdminAccountModify", admin_account_modify),
    crate::engine::Entry::new("AdminAccountList", admin_account_list),
];

fn open(call: &Call) -> Result<Accounts, ShellError> {
    Accounts::open(call.root).map_err(|e| account_failed(call.path, e))
}

fn account_failed(path: &str, e: AccountError) -> ShellError {
    let expected = match &e {
        AccountError::BadName { .. } => Some("1 to 25 letters, digits, . _ - @"),
        AccountError::NoSuchId { .. } | AccountError::NotFound { .. } => {
            Some("an account xCommand AdminAccountList shows")
        }
        _ => None,
    };
    let err = failed(path, e.to_string());
    match expected {
        Some(x) => err.expected(x),
        None => err,
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// A `<Yes/No>` parameter (the schema has canonicalised it).
fn flag(call: &Call, name: &str) -> Option<bool> {
    param(call.params, name).map(|v| v.eq_ignore_ascii_case("Yes"))
}

fn access(call: &Call) -> Result<Option<Access>, ShellError> {
    match param(call.params, "Access") {
        None => Ok(None),
        Some(w) => Access::from_word(w).map(Some).ok_or_else(|| {
            failed(call.path, format!("'{w}' is not an access level"))
                .expected("AccountDisabled, ReadOnly or ReadWrite")
        }),
    }
}

/// Records a change in the audit log, with the front end it came through.
fn audit(call: &Call, old: &str, new: &str) {
    let path = format!("xCommand {}", call.path);
    let via = format!("(via {})", call.ctx.front.name());
    let new = if new.is_empty() {
        format!("deleted {via}")
    } else {
        format!("{new} {via}")
    };
    let _ = call
        .store
        .audit_note(&call.ctx.who, &path, old, &new, "applied");
}

fn describe(a: &Account) -> String {
    format!(
        "Name: \"{}\" Access: {} WebAccess: {} APIAccess: {}",
        a.name,
        a.access,
        yes_no(a.web),
        yes_no(a.api)
    )
}

/// The 1-based number of `name` in the list.
fn id_of(list: &[Account], name: &str) -> Option<usize> {
    list.iter()
        .position(|a| a.name.eq_ignore_ascii_case(name))
        .map(|i| i + 1)
}

/// `xCommand AdminAccountAdd Name: Password: Access: [WebAccess:] [APIAccess:]`.
fn admin_account_add(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    let accounts = open(&call)?;
    let name = param(call.params, "Name").unwrap_or_default();
    let pw = param(call.params, "Password").unwrap_or_default();
    let access = access(&call)?.unwrap_or(Access::ReadWrite);
    let web = flag(&call, "WebAccess").unwrap_or(true);
    let api = flag(&call, "APIAccess").unwrap_or(true);
    accounts
        .add_with(name, pw, access, web, api)
        .map_err(|e| account_failed(call.path, e))?;
    let acc = Account {
        name: name.to_string(),
        access,
        web,
        api,
    };
    audit(&call, "", &format!("{} Password: {MASK}", describe(&acc)));
    let list = accounts.list().unwrap_or_default();
    let id = id_of(&list, name).unwrap_or(list.len());
    Ok(ok(
        call.name,
        vec![
            Item::leaf("AdminAccountId", id.to_string()),
            Item::leaf("Name", name),
        ],
    ))
}

/// `xCommand AdminAccountDelete AdminAccountId: <1..15>` or `Name:`.
fn admin_account_delete(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    let accounts = open(&call)?;
    let id = param(call.params, "AdminAccountId");
    let name = param(call.params, "Name");
    let deleted = match (id, name) {
        (Some(id), None) => {
            let n: usize = id
                .parse()
                .map_err(|_| failed(call.path, format!("'{id}' is not an account number")))?;
            accounts
                .delete_id(n)
                .map_err(|e| account_failed(call.path, e))?
        }
        (None, Some(name)) => {
            let list = accounts.list().map_err(|e| account_failed(call.path, e))?;
            let real = list
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .map(|a| a.name.clone())
                .unwrap_or_else(|| name.to_string());
            accounts
                .delete(name)
                .map_err(|e| account_failed(call.path, e))?;
            real
        }
        _ => {
            return Err(failed(
                call.path,
                "give the account by AdminAccountId or by Name, one of the two",
            )
            .expected("AdminAccountId: <1..15> or Name: \"...\""))
        }
    };
    audit(&call, &format!("Name: \"{deleted}\""), "");
    Ok(ok(call.name, vec![Item::leaf("Name", deleted)]))
}

/// `xCommand AdminAccountModify Name: [Password:] [Access:] [WebAccess:] [APIAccess:] [Unlock:]`.
fn admin_account_modify(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    let accounts = open(&call)?;
    let name = param(call.params, "Name").unwrap_or_default();
    let m = Modify {
        password: param(call.params, "Password").map(str::to_string),
        access: access(&call)?,
        web: flag(&call, "WebAccess"),
        api: flag(&call, "APIAccess"),
        unlock: param(call.params, "Unlock").is_some_and(|v| v.eq_ignore_ascii_case("True")),
    };
    if m.password.is_none() && m.access.is_none() && m.web.is_none() && m.api.is_none() && !m.unlock
    {
        return Err(failed(call.path, "nothing to change")
            .expected("Password:, Access:, WebAccess:, APIAccess: or Unlock: True"));
    }
    let before = accounts
        .list()
        .map_err(|e| account_failed(call.path, e))?
        .into_iter()
        .find(|a| a.name.eq_ignore_ascii_case(name));
    let after = accounts
        .modify(name, &m)
        .map_err(|e| account_failed(call.path, e))?;
    let mut new = describe(&after);
    if m.password.is_some() {
        new.push_str(&format!(" Password: {MASK}"));
    }
    if m.unlock {
        new.push_str(" Unlock: True");
    }
    audit(
        &call,
        &before.as_ref().map(describe).unwrap_or_default(),
        &new,
    );
    Ok(ok(call.name, vec![Item::leaf("Name", after.name)]))
}

/// `xCommand AdminAccountList`: number, name, access and flags of each account.
fn admin_account_list(call: Call) -> Result<CommandResult, ShellError> {
    let accounts = open(&call)?;
    let list = accounts.list().map_err(|e| account_failed(call.path, e))?;
    let mut items = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let locked = accounts.locked_seconds(&a.name).unwrap_or(0) > 0;
        items.push(Item::Node {
            name: "Account".into(),
            item: Some(i as u32 + 1),
            children: vec![
                Item::leaf("Name", a.name.clone()),
                Item::leaf("Access", a.access.as_str()),
                Item::leaf("WebAccess", yes_no(a.web)),
                Item::leaf("APIAccess", yes_no(a.api)),
                Item::leaf("LockedOut", if locked { "True" } else { "False" }),
            ],
        });
    }
    Ok(ok(call.name, items))
}
