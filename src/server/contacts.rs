//! `/api/v1/contacts`: the contact list the desk looks callers up in and dials from, with CSV
//! import.

use super::api::ApiError;
use super::AppState;
use crate::model::Contact;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
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
    // What the desk cannot dial is no use in the list: `0412 345 678 (mobile)`, `ext 12`, or
    // a spreadsheet's `6.14E+10`.
    if crate::model::phone::dialable(&contact.number).is_none() {
        return Err(format!(
            "{:?} is not a number to dial: only digits, spaces, dashes, dots, brackets and a leading +",
            contact.number
        ));
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
/// Good rows are saved in one transaction; each bad one is reported by line, and so is each
/// contact the list already has (same name, same number however written), so importing a file
/// again adds nothing.
async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !is_csv(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "a contacts import must be sent as CSV, with the header Content-Type: text/csv".into(),
        ));
    }
    let (rows, mut skipped) = parse_csv(&body).map_err(ApiError::BadRequest)?;
    let contacts: Vec<Contact> = rows.iter().map(|(_, contact)| contact.clone()).collect();
    let added = state.store.add_new_contacts(&contacts).await?;
    let mut imported = 0;
    for ((line, contact), saved) in rows.iter().zip(&added) {
        match saved {
            Some(_) => imported += 1,
            None => skipped
                .push((*line, format!("line {line}: {} ({}) is already a contact", contact.name, contact.number))),
        }
    }
    skipped.sort();
    let skipped: Vec<String> = skipped.into_iter().map(|(_, why)| why).collect();
    Ok(Json(serde_json::json!({ "imported": imported, "skipped": skipped })))
}

/// Whether the body is declared `text/csv` (parameters such as `charset` allowed). Only that is
/// taken: a page on another site may post `text/plain` or a form without the browser asking
/// first, and so plant contacts; for `text/csv` the browser asks, and no other site is let in.
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
}

/// The contacts in a CSV text with the line each starts on, and for each row that is not one,
/// its line and why. A leading byte order mark is not part of the text: Excel's "CSV UTF-8"
/// starts with one, which would otherwise be read into the first header (`\u{feff}name`).
#[allow(clippy::type_complexity)]
pub fn parse_csv(text: &str) -> Result<(Vec<(u64, Contact)>, Vec<(u64, String)>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|error| format!("the CSV header cannot be read: {error}"))?.clone();
    let column = |name: &str| headers.iter().position(|header| header.eq_ignore_ascii_case(name));
    let (Some(name), Some(number)) = (column("name"), column("number")) else {
        return Err("the CSV needs a header row with `name` and `number` columns".into());
    };
    let company = column("company");
    let (mut contacts, mut skipped) = (Vec::new(), Vec::new());
    let mut lines = LineCounter::new(text);
    for record in reader.records() {
        if contacts.len() + skipped.len() >= MAX_IMPORT_ROWS {
            return Err(format!("at most {MAX_IMPORT_ROWS} rows per import"));
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |at| lines.line_of(at));
                skipped.push((line, format!("line {line}: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |at| lines.line_of(at));
        let field = |at: usize| record.get(at).unwrap_or_default().to_owned();
        let contact = Contact {
            id: 0,
            name: field(name),
            number: field(number),
            company: company.map(field).filter(|company| !company.is_empty()),
        };
        match check(&contact) {
            Ok(()) => contacts.push((line, contact)),
            Err(why) => skipped.push((line, format!("line {line}: {why}"))),
        }
    }
    Ok((contacts, skipped))
}

/// Where each row starts, as the file counts lines: blank lines and quoted fields that span
/// lines included. The csv reader's position is where it began reading, before the blank lines
/// it skipped, so the count goes on from the last row's (rows come in order: linear, not a
/// count from the top for every row).
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self { text: text.as_bytes(), byte: 0, line: 1 }
    }

    fn line_of(&mut self, at: &csv::Position) -> u64 {
        let start = usize::try_from(at.byte()).unwrap_or(usize::MAX).min(self.text.len()).max(self.byte);
        self.line += self.text[self.byte..start].iter().filter(|byte| **byte == b'\n').count() as u64;
        self.byte = start;
        let blank = self.text[start..].iter().take_while(|byte| matches!(byte, b'\r' | b'\n'));
        self.line + blank.filter(|byte| **byte == b'\n').count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_import_by_header_and_bad_rows_are_named() {
        let text = "Number,Name,Company\n02 9999 0000,Jane Citizen,ACME\nnot-a-number,Bad Row,\n+61412345678,Sam,\n";
        let (contacts, skipped) = parse_csv(text).unwrap();
        assert_eq!(contacts.len(), 2);
        let (line, jane) = &contacts[0];
        assert_eq!((*line, jane.name.as_str(), jane.company.as_deref()), (2, "Jane Citizen", Some("ACME")));
        assert_eq!(skipped, vec![(3, "line 3: \"not-a-number\" is not a phone number".to_owned())]);
        assert!(parse_csv("who,what\nx,y\n").unwrap_err().contains("`name` and `number`"));
    }

    #[test]
    fn what_cannot_be_dialled_is_refused_and_lines_count_as_the_file_has_them() {
        // A blank line, and a quoted address over two lines, before the rows that go wrong.
        let text = "name,number,company\n\nAda,02 9999 0001,\"1 Long St\nSydney\"\nBob,0412 345 678 (mobile),\nCy,6.14E+10,\nDi,(02) 9999-0002,\n";
        let (contacts, skipped) = parse_csv(text).unwrap();
        let kept: Vec<(u64, &str)> = contacts.iter().map(|(line, c)| (*line, c.name.as_str())).collect();
        assert_eq!(kept, vec![(3, "Ada"), (7, "Di")]);
        let lines: Vec<u64> = skipped.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![5, 6]);
        assert!(skipped[0].1.starts_with("line 5: \"0412 345 678 (mobile)\" is not a number to dial"), "{skipped:?}");
    }

    #[test]
    fn a_byte_order_mark_from_excel_is_not_read_into_the_header() {
        let (contacts, skipped) = parse_csv("\u{feff}name,number\nAda,0299990000\n").unwrap();
        let read: Vec<(u64, &str, &str)> =
            contacts.iter().map(|(line, c)| (*line, c.name.as_str(), c.number.as_str())).collect();
        assert_eq!(read, vec![(2, "Ada", "0299990000")]);
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn only_a_body_declared_csv_is_imported() {
        let with = |content_type: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(content_type) = content_type {
                headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            }
            is_csv(&headers)
        };
        assert!(with(Some("text/csv")));
        assert!(with(Some("Text/CSV; charset=utf-8")));
        for other in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("text/csvx")] {
            assert!(!with(other), "{other:?}");
        }
    }
}
