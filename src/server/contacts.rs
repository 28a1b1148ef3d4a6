//! `/api/v1/contacts`: the contact list the desk looks callers up in and dials from, with CSV
//! import.

use super::api::ApiError;
use super::AppState;
use crate::model::Contact;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Rows one CSV import may carry.
const MAX_IMPORT_ROWS: usize = 20_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list).post(save))
        .route("/contacts/{id}", delete(remove))
        .route("/contacts/import", post(import))
}

#[derive(Deserialize)]
struct Lookup {
    number: Option<String>,
}

async fn list(State(state): State<AppState>, Query(lookup): Query<Lookup>) -> Result<Json<Vec<Contact>>, ApiError> {
    Ok(Json(state.store.contacts(lookup.number.as_deref()).await?))
}

fn check(contact: &Contact) -> Result<(), String> {
    if contact.name.trim().is_empty() || contact.name.len() > 200 {
        return Err("a contact needs a name of at most 200 characters".into());
    }
    if contact.company.as_ref().is_some_and(|company| company.len() > 200) {
        return Err("a company name is at most 200 characters".into());
    }
    let digits = contact.number.chars().filter(char::is_ascii_digit).count();
    if digits < 2 || contact.number.len() > 40 {
        return Err(format!("{:?} is not a phone number", contact.number));
    }
    Ok(())
}

/// Adds a contact (no id) or updates one (with its id).
async fn save(State(state): State<AppState>, Json(contact): Json<Contact>) -> Result<Json<Contact>, ApiError> {
    check(&contact).map_err(ApiError::BadRequest)?;
    let saved = state.store.save_contacts(std::slice::from_ref(&contact)).await?;
    match saved.into_iter().next() {
        Some(saved) => Ok(Json(saved)),
        None => Err(ApiError::NotFound(format!("there is no contact {}", contact.id))),
    }
}

async fn remove(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.store.delete_contact(id).await? {
        Ok(Json(serde_json::json!({ "deleted": id })))
    } else {
        Err(ApiError::NotFound(format!("there is no contact {id}")))
    }
}

/// CSV with a header row naming `name` and `number` (and optionally `company`), in any order.
/// Good rows are saved in one transaction; each bad one is reported by line.
async fn import(State(state): State<AppState>, body: String) -> Result<Json<serde_json::Value>, ApiError> {
    let (contacts, skipped) = parse_csv(&body).map_err(ApiError::BadRequest)?;
    let saved = state.store.save_contacts(&contacts).await?;
    Ok(Json(serde_json::json!({ "imported": saved.len(), "skipped": skipped })))
}

/// The contacts in a CSV text and, for each row that is not one, why.
pub fn parse_csv(text: &str) -> Result<(Vec<Contact>, Vec<String>), String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|error| format!("the CSV header cannot be read: {error}"))?.clone();
    let column = |name: &str| headers.iter().position(|header| header.eq_ignore_ascii_case(name));
    let (Some(name), Some(number)) = (column("name"), column("number")) else {
        return Err("the CSV needs a header row with `name` and `number` columns".into());
    };
    let company = column("company");
    let (mut contacts, mut skipped) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        if contacts.len() + skipped.len() >= MAX_IMPORT_ROWS {
            return Err(format!("at most {MAX_IMPORT_ROWS} rows per import"));
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                skipped.push(format!("line {line}: {error}"));
                continue;
            }
        };
        let field = |at: usize| record.get(at).unwrap_or_default().to_owned();
        let contact = Contact {
            id: 0,
            name: field(name),
            number: field(number),
            company: company.map(field).filter(|company| !company.is_empty()),
        };
        match check(&contact) {
            Ok(()) => contacts.push(contact),
            Err(why) => skipped.push(format!("line {line}: {why}")),
        }
    }
    Ok((contacts, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_import_by_header_and_bad_rows_are_named() {
        let text = "Number,Name,Company\n02 9999 0000,Jane Citizen,ACME\nnot-a-number,Bad Row,\n+61412345678,Sam,\n";
        let (contacts, skipped) = parse_csv(text).unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!((contacts[0].name.as_str(), contacts[0].company.as_deref()), ("Jane Citizen", Some("ACME")));
        assert_eq!(skipped, vec!["line 3: \"not-a-number\" is not a phone number".to_owned()]);
        assert!(parse_csv("who,what\nx,y\n").unwrap_err().contains("`name` and `number`"));
    }
}
