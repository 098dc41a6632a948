//! The parties of a transfer, one person per page (the "add another" pattern): a summary of
//! sellers and buyers with 修改 / 删除 for each, "再添加一位" for each side, and "保存并继续",
//! which checks both sides. Each person's page has one button, so Enter (前往 on a phone
//! keyboard) saves that person.
//!
//! The first buyer is prefilled from the signed-in account when the draft is made. Sellers are
//! typed, with what the back office has published about the unit beside them: the masked
//! registered holders when the citizen gave the seller's certificate number
//! ([`crate::certificates::published_unit`]).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::apply::load_draft;
use super::{CsrfOnly, Layout, PageResult, layout, render, see_other};
use crate::accounts;
use crate::app::{App, AppState};
use crate::applications::{self, ApplicationForm, MAX_PARTIES, PartyInput, Side};
use crate::certificates::{self, PublishedUnit};
use crate::error::FieldError;
use crate::web::{Citizen, PageError, check_form_csrf, form_csrf};

/// Where the summary of an error about a party field links: the person's page and field, or
/// the side's section of the parties page. `None` for fields that are not about parties.
pub(super) fn party_href(draft_id: &str, field: &str) -> Option<String> {
    if let Some(side) = [Side::Seller, Side::Buyer]
        .into_iter()
        .find(|s| s.list_field() == field)
    {
        return Some(format!("/drafts/{draft_id}/parties#{}", side.list_field()));
    }
    let mut parts = field.splitn(3, '_');
    let side = Side::from_key(parts.next()?)?;
    let index: usize = parts.next()?.parse().ok()?;
    let input = parts.next()?;
    Some(format!(
        "/drafts/{draft_id}/parties/{}/{}#{input}",
        side.key(),
        index + 1
    ))
}

/// The sides an application of `biz` has: sellers and buyers, or only the applicants (首次登记).
pub(super) fn sides_of(biz: ow_domain::BusinessType) -> &'static [Side] {
    if crate::business::profile(biz).has_sellers {
        &[Side::Seller, Side::Buyer]
    } else {
        &[Side::Buyer]
    }
}

/// The rows of a side that hold something (drafts made before the one-person pages could hold
/// blank rows).
fn filled(rows: &[PartyInput]) -> Vec<PartyInput> {
    rows.iter().filter(|r| !r.is_blank()).cloned().collect()
}

fn tidy(form: &mut ApplicationForm) {
    form.sellers = filled(&form.sellers);
    form.buyers = filled(&form.buyers);
}

struct PersonRow {
    n: usize,
    name: String,
    id_number: String,
    phone: String,
    share: String,
}

struct SideSummary {
    key: &'static str,
    title: &'static str,
    short: &'static str,
    list_field: &'static str,
    rows: Vec<PersonRow>,
    can_add: bool,
}

fn side_summary(side: Side, rows: &[PartyInput]) -> SideSummary {
    let alone = rows.len() == 1;
    SideSummary {
        key: side.key(),
        title: side.name_zh(),
        short: side.short_zh(),
        list_field: side.list_field(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| PersonRow {
                n: i + 1,
                name: r.name.clone(),
                id_number: r.id_number.clone(),
                phone: r.phone.clone(),
                share: if r.share.trim().is_empty() && alone {
                    "全部（单独所有）".into()
                } else {
                    r.share.clone()
                },
            })
            .collect(),
        can_add: rows.len() < MAX_PARTIES,
    }
}

#[derive(Template)]
#[template(path = "draft_parties.html")]
struct PartiesPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    sides: Vec<SideSummary>,
    own_prefilled: bool,
    published: Option<PublishedUnit>,
    gave_certificate: bool,
    /// The page's heading: 买卖双方, or 申请人 when there are no sellers.
    heading: &'static str,
}

async fn parties_page(
    app: &App,
    s: &accounts::Session,
    mut l: Layout,
    id: String,
    form: &ApplicationForm,
    errors: Vec<FieldError>,
    biz: ow_domain::BusinessType,
) -> Result<PartiesPage, PageError> {
    let profile = crate::business::profile(biz);
    let own = accounts::own_details(app, &s.account_id).await?;
    let own_prefilled = form
        .buyers
        .first()
        .is_some_and(|b| b.id_number == own.id_number);
    let published =
        certificates::published_unit(app, &form.unit_code, &form.certificate_number).await?;
    for e in errors {
        if e.field == "sellers" || e.field == "buyers" {
            let href = format!("#{}", e.field);
            l.errors.push(super::ErrorLink {
                field: e.field,
                message: e.message,
                href,
            });
        } else {
            let href = party_href(&id, &e.field).unwrap_or_else(|| format!("#{}", e.field));
            l.push_elsewhere(e.message, href);
        }
    }
    Ok(PartiesPage {
        layout: l,
        step: 2,
        sides: sides_of(biz)
            .iter()
            .map(|side| {
                let mut summary = side_summary(*side, side.rows(form));
                if !profile.has_sellers {
                    summary.title = profile.applicants_label_zh;
                    summary.short = "权利人";
                }
                summary
            })
            .collect(),
        heading: if profile.has_sellers {
            "买卖双方"
        } else {
            "权利人（申请人）"
        },
        own_prefilled,
        published,
        gave_certificate: !form.certificate_number.trim().is_empty(),
        draft_id: id,
    })
}

/// `GET /drafts/{id}/parties`: the summary of both sides.
pub async fn draft_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (row, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout("买卖双方", Some(&s), csrf);
    if let Some(side) = q.get("deleted").and_then(|k| Side::from_key(k)) {
        l.notice = Some(format!("已删除一位{}", side.short_zh()));
    }
    let page = parties_page(&app, &s, l, id, &form, Vec::new(), row.business).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/parties` ("保存并继续"): checks both sides, then goes on to the
/// materials.
pub async fn save_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let (row, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    let mut errors = Vec::new();
    for side in sides_of(row.business) {
        if let Err(e) = applications::check_side(side.rows(&form), *side) {
            errors.extend(e);
        }
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/materials")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let l = layout("买卖双方", Some(&s), csrf);
    let page = parties_page(&app, &s, l, id, &form, errors, row.business).await?;
    render(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(Template)]
#[template(path = "draft_person.html")]
struct PersonPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    heading: String,
    action: String,
    input: PartyInput,
    registered: Option<String>,
    share_hint: String,
}

/// The form of one person.
#[derive(Debug, Deserialize)]
pub struct PersonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    share: String,
}

impl PersonForm {
    fn input(&self) -> PartyInput {
        PartyInput {
            name: self.name.trim().to_owned(),
            id_number: self.id_number.trim().to_uppercase(),
            phone: self.phone.trim().to_owned(),
            share: self.share.trim().to_owned(),
        }
    }
}

fn side_of(key: &str) -> Result<Side, PageError> {
    Side::from_key(key).ok_or(PageError::NotFound)
}

/// `n` (from 1) as an index into `rows`, or 404.
fn index_of(n: &str, rows: &[PartyInput]) -> Result<usize, PageError> {
    n.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|i| *i < rows.len())
        .ok_or(PageError::NotFound)
}

/// One person being added (`index` `None`) or changed, as typed.
struct Person {
    side: Side,
    index: Option<usize>,
    input: PartyInput,
}

async fn person_page(
    app: &App,
    s: &accounts::Session,
    headers: &HeaderMap,
    draft_id: String,
    form: &ApplicationForm,
    person: Person,
    errors: Vec<FieldError>,
) -> Result<PersonPage, PageError> {
    let Person { side, index, input } = person;
    let rows = side.rows(form);
    let position = index.unwrap_or(rows.len());
    let heading = match index {
        Some(i) => format!("修改第{}位{}", i + 1, side.short_zh()),
        None if rows.is_empty() => format!("添加{}", side.short_zh()),
        None => format!("再添加一位{}", side.short_zh()),
    };
    let registered = if side == Side::Seller {
        certificates::published_unit(app, &form.unit_code, &form.certificate_number)
            .await?
            .and_then(|p| p.holders_masked.get(position).cloned())
    } else {
        None
    };
    let others = rows.len() - usize::from(index.is_some());
    let share_hint = if others == 0 {
        "只有一位时可以不填，即全部份额。份额可写作 1/2、0.5 或 50%".to_owned()
    } else {
        format!(
            "份额可写作 1/2、0.5 或 50%；全部{}的份额之和必须等于 1",
            side.short_zh()
        )
    };
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let mut l = layout(&heading, Some(s), csrf);
    l.set_errors(errors);
    let action = match index {
        Some(i) => format!("/drafts/{draft_id}/parties/{}/{}", side.key(), i + 1),
        None => format!("/drafts/{draft_id}/parties/{}/new", side.key()),
    };
    Ok(PersonPage {
        layout: l,
        draft_id,
        step: 2,
        heading,
        action,
        input,
        registered,
        share_hint,
    })
}

/// `GET /drafts/{id}/parties/{side}/new`: the page for one more person.
pub async fn person_new(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side)): Path<(String, String)>,
) -> PageResult {
    let side = side_of(&side)?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    if side.rows(&form).len() >= MAX_PARTIES {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let page = person_page(
        &app,
        &s,
        &headers,
        id,
        &form,
        Person {
            side,
            index: None,
            input: PartyInput::default(),
        },
        Vec::new(),
    )
    .await?;
    render(&page, StatusCode::OK)
}

/// `GET /drafts/{id}/parties/{side}/{n}`: change person `n` (from 1).
pub async fn person_edit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side, n)): Path<(String, String, String)>,
) -> PageResult {
    let side = side_of(&side)?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    let index = index_of(&n, side.rows(&form))?;
    let input = side.rows(&form)[index].clone();
    let page = person_page(
        &app,
        &s,
        &headers,
        id,
        &form,
        Person {
            side,
            index: Some(index),
            input,
        },
        Vec::new(),
    )
    .await?;
    render(&page, StatusCode::OK)
}

async fn save_person(
    app: &App,
    s: &accounts::Session,
    headers: &HeaderMap,
    id: String,
    side: Side,
    n: Option<&str>,
    f: PersonForm,
) -> PageResult {
    check_form_csrf(app, Some(s), headers, Some(&f.csrf))?;
    let (_, mut form) = load_draft(app, s, &id).await?;
    tidy(&mut form);
    let index = match n {
        Some(n) => Some(index_of(n, side.rows(&form))?),
        None => None,
    };
    let input = f.input();
    let mut errors = applications::check_person(&input).err().unwrap_or_default();
    if index.is_none() && side.rows(&form).len() >= MAX_PARTIES {
        errors.push(FieldError::new(
            "name",
            format!("{}最多{}位", side.name_zh(), MAX_PARTIES),
        ));
    }
    if !errors.is_empty() {
        let person = Person { side, index, input };
        let page = person_page(app, s, headers, id, &form, person, errors).await?;
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let rows = side.rows_mut(&mut form);
    match index {
        Some(i) => rows[i] = input,
        None => rows.push(input),
    }
    if !applications::save_draft(app, &s.account_id, &id, &form, ow_store::now_ms()).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other(&format!("/drafts/{id}/parties")))
}

/// `POST /drafts/{id}/parties/{side}/new`: checks and adds the person.
pub async fn person_add(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side)): Path<(String, String)>,
    Form(f): Form<PersonForm>,
) -> PageResult {
    let side = side_of(&side)?;
    save_person(&app, &s, &headers, id, side, None, f).await
}

/// `POST /drafts/{id}/parties/{side}/{n}`: checks and saves person `n`.
pub async fn person_save(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side, n)): Path<(String, String, String)>,
    Form(f): Form<PersonForm>,
) -> PageResult {
    let side = side_of(&side)?;
    save_person(&app, &s, &headers, id, side, Some(&n), f).await
}

#[derive(Template)]
#[template(path = "draft_person_delete.html")]
struct DeletePersonPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    who: String,
    name: String,
    id_number: String,
    action: String,
}

/// `GET /drafts/{id}/parties/{side}/{n}/delete`: asks before removing person `n`.
pub async fn person_delete_confirm(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side, n)): Path<(String, String, String)>,
) -> PageResult {
    let side = side_of(&side)?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    let index = index_of(&n, side.rows(&form))?;
    let person = side.rows(&form)[index].clone();
    let who = format!("第{}位{}", index + 1, side.short_zh());
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = DeletePersonPage {
        layout: layout(&format!("删除{who}"), Some(&s), csrf),
        action: format!("/drafts/{id}/parties/{}/{}/delete", side.key(), index + 1),
        draft_id: id,
        step: 2,
        who,
        name: person.name,
        id_number: person.id_number,
    };
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/parties/{side}/{n}/delete`: removes person `n`.
pub async fn person_delete(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, side, n)): Path<(String, String, String)>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let side = side_of(&side)?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    tidy(&mut form);
    let index = index_of(&n, side.rows(&form))?;
    side.rows_mut(&mut form).remove(index);
    if !applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other(&format!(
        "/drafts/{id}/parties?deleted={}",
        side.key()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_errors_link_to_the_person_or_the_side() {
        assert_eq!(
            party_href("d1", "seller_0_id_number").as_deref(),
            Some("/drafts/d1/parties/seller/1#id_number")
        );
        assert_eq!(
            party_href("d1", "buyer_2_share").as_deref(),
            Some("/drafts/d1/parties/buyer/3#share")
        );
        assert_eq!(
            party_href("d1", "buyers").as_deref(),
            Some("/drafts/d1/parties#buyers")
        );
        assert_eq!(party_href("d1", "unit_code"), None);
        assert_eq!(party_href("d1", "material_sale_contract"), None);
    }
}
