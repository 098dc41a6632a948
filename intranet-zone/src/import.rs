//! Import of messages from the extranet ([`Importer`], the exchange's `ImportHandler`).
//!
//! - `SurveyPackage` → its survey file (and report) sealed to disk in `prepare` (durable before
//!   the row commits), then in the import's transaction: parsed and checked (intrinsic checks,
//!   overlaps with existing parcels, gaps to claimed neighbours), stored with its findings as a
//!   `pending` package of its district. A package id received before is refused (replay).
//! - `RegisterLog` → the register mirror ([`crate::register`]): in sequence, exactly once,
//!   gaps reported and filled.
//!
//! Exactly-once is the exchange's job (message id recorded in the same transaction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ow_exchange::{
    Disposition, ExchangeError, ImportHandler, InboundMessage, Message, ReviewFinding,
    SurveyPackage,
};
use sqlx::{Any, Transaction};

use crate::checks::{self, SpatialHit};
use crate::error::IntranetError;
use crate::{AppState, files, packages, parcels, register};

/// The import handler of the cadastral zone.
#[derive(Debug, Clone)]
pub struct Importer {
    state: AppState,
    /// Survey checks done in `prepare` (outside the import's transaction, so parsing a large
    /// file never holds the database writer), by message id, taken by `import`.
    prepared: Arc<Mutex<HashMap<String, checks::Checked>>>,
}

impl Importer {
    /// A handler over `state`.
    pub fn new(state: AppState) -> Self {
        Importer {
            state,
            prepared: Arc::default(),
        }
    }

    fn take_prepared(&self, message_id: &str) -> Option<checks::Checked> {
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(message_id)
    }
}

fn handler_error(e: IntranetError) -> ExchangeError {
    match e {
        IntranetError::Db(e) => ExchangeError::Database(e),
        IntranetError::Exchange(e) => e,
        other => ExchangeError::Handler(other.to_string()),
    }
}

impl ImportHandler for Importer {
    async fn prepare(&self, msg: &InboundMessage) -> Result<(), ExchangeError> {
        let Message::SurveyPackage(pkg) = &msg.envelope.message else {
            return Ok(());
        };
        let mut items = vec![(pkg.survey.item.clone(), "survey")];
        if let Some(report) = &pkg.report {
            items.push((report.item.clone(), "report"));
        }
        for (item, kind) in items {
            let (Some(file), Some(id)) = (
                msg.file(&item),
                files::file_id(&msg.envelope.message_id, kind),
            ) else {
                // Refused in `import` with the reason.
                continue;
            };
            if file.size() > self.state.settings.survey.max_file_bytes {
                continue;
            }
            let bytes = file.read_async().await?;
            let pii = self.state.pii.clone();
            let dir = self.state.data_dir().to_path_buf();
            let cfg = self.state.settings.checks.clone();
            let format = pkg.format.clone();
            let is_survey = kind == "survey";
            let checked = tokio::task::spawn_blocking(move || {
                files::store_blocking(&pii, &dir, &id, &bytes)?;
                Ok::<_, IntranetError>(
                    is_survey.then(|| checks::parse_and_check(&bytes, &format, &cfg)),
                )
            })
            .await
            .map_err(|e| ExchangeError::Handler(format!("sealing a survey file failed: {e}")))?
            .map_err(handler_error)?;
            if let Some(checked) = checked {
                let mut prepared = self
                    .prepared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Bounded: a message whose import never follows (refused first) leaves one entry.
                if prepared.len() >= 16 {
                    prepared.clear();
                }
                prepared.insert(msg.envelope.message_id.clone(), checked);
            }
        }
        Ok(())
    }

    async fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        msg: &InboundMessage,
    ) -> Result<Disposition, ExchangeError> {
        match &msg.envelope.message {
            Message::SurveyPackage(pkg) => {
                let prepared = self.take_prepared(&msg.envelope.message_id);
                survey_package(&self.state, tx, msg, pkg, prepared)
                    .await
                    .map_err(handler_error)
            }
            Message::RegisterLog(log) => {
                if let Err(reason) = register::validate(log) {
                    tracing::warn!(district = %log.district_code, "register log refused");
                    return Ok(Disposition::Refused { reason });
                }
                let report = register::apply(tx, log, self.state.now_ms())
                    .await
                    .map_err(handler_error)?;
                tracing::info!(district = %log.district_code, applied = report.applied,
                    duplicates = report.duplicates, held = report.held, "register log imported");
                Ok(Disposition::Imported)
            }
            other => Ok(Disposition::Refused {
                reason: format!(
                    "业务内网不接收“{}”类消息（仅接收权籍调查成果和登簿日志）",
                    other.kind()
                ),
            }),
        }
    }
}

async fn district_known(
    tx: &mut Transaction<'static, Any>,
    code: &str,
) -> Result<bool, IntranetError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM int_districts WHERE code = $1")
        .bind(code)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

async fn survey_package(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    msg: &InboundMessage,
    pkg: &SurveyPackage,
    prepared: Option<checks::Checked>,
) -> Result<Disposition, IntranetError> {
    let refuse = |reason: String| {
        tracing::warn!(package_id = %pkg.package_id, "survey package refused at import");
        Ok(Disposition::Refused { reason })
    };
    if uuid::Uuid::parse_str(&pkg.package_id).is_err() {
        return refuse("成果编号不是有效的 UUID".into());
    }
    if !matches!(pkg.format.as_str(), "boundary-txt" | "geojson") {
        return refuse(format!(
            "成果格式 {:?} 不受支持（应为 boundary-txt 或 geojson）",
            pkg.format
        ));
    }
    if !district_known(tx, &pkg.district_code).await? {
        return refuse(format!(
            "区县 {} 不在本系统中；请先在业务内网登记该区县",
            pkg.district_code
        ));
    }
    if packages::exists(tx, &pkg.package_id).await? {
        return refuse("该成果（同一成果编号）已经收到过，不再重复导入".into());
    }
    let Some(file) = msg.file(&pkg.survey.item) else {
        return refuse("成果文件不在数据包中".into());
    };
    let max = state.settings.survey.max_file_bytes;
    if file.size() > max {
        return refuse(format!(
            "成果文件 {} 字节，超过本系统上限 {max} 字节；请通过离线介质报送或拆分后重新报送",
            file.size()
        ));
    }
    let report_id = match &pkg.report {
        Some(r) if msg.file(&r.item).is_some_and(|f| f.size() <= max) => {
            files::file_id(&msg.envelope.message_id, "report")
        }
        Some(_) => return refuse("成果报告不在数据包中或超过大小上限".into()),
        None => None,
    };
    let Some(survey_id) = files::file_id(&msg.envelope.message_id, "survey") else {
        return refuse("消息编号无效".into());
    };
    let checked = match prepared {
        Some(checked) => checked,
        None => {
            let bytes = file.read_async().await?;
            let format = pkg.format.clone();
            let cfg = state.settings.checks.clone();
            tokio::task::spawn_blocking(move || checks::parse_and_check(&bytes, &format, &cfg))
                .await
                .map_err(|e| IntranetError::Invalid(format!("the survey checks failed: {e}")))?
        }
    };
    let mut findings = checked.findings.clone();
    findings.extend(spatial_findings(state, tx, &checked).await?);
    let now = state.now_ms();
    packages::insert(
        tx,
        state,
        &packages::NewPackage {
            message: pkg,
            message_id: &msg.envelope.message_id,
            bundle_id: &msg.bundle_id,
            survey_file_id: &survey_id,
            report_file_id: report_id.as_deref(),
            parcels: &checked.parcels,
            findings: &findings,
        },
        now,
    )
    .await?;
    tracing::info!(package_id = %pkg.package_id, district = %pkg.district_code,
        parcels = checked.parcels.len(), findings = findings.len(), "survey package imported");
    Ok(Disposition::Imported)
}

/// The overlap and gap findings of `checked` against the existing parcels.
pub async fn spatial_findings(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    checked: &checks::Checked,
) -> Result<Vec<ReviewFinding>, IntranetError> {
    let claimed: Vec<String> = checked
        .parcels
        .iter()
        .flat_map(|p| p.neighbours.iter().cloned())
        .collect();
    let neighbour_ids: HashMap<String, checks::ParcelId> =
        parcels::ids_by_code(tx, &claimed).await?;
    let hits = {
        let index = state.index_read();
        checks::spatial(
            checked,
            &index,
            &neighbour_ids,
            &state.settings.spatial.tolerance(),
        )
    };
    let ids: Vec<checks::ParcelId> = hits
        .iter()
        .filter_map(|h| match h {
            SpatialHit::Overlap { existing, .. } => Some(*existing),
            SpatialHit::Gap { .. } | SpatialHit::UnknownNeighbour { .. } => None,
        })
        .collect();
    let codes: HashMap<checks::ParcelId, String> = parcels::by_ids(tx, &ids)
        .await?
        .into_iter()
        .map(|(id, code, _)| (id, code))
        .collect();
    Ok(hits
        .iter()
        .map(|h| {
            let code = match h {
                SpatialHit::Overlap { existing, .. } => {
                    codes.get(existing).map_or("?", String::as_str)
                }
                SpatialHit::Gap { neighbour, .. }
                | SpatialHit::UnknownNeighbour { neighbour, .. } => neighbour.as_str(),
            };
            checks::finding_for(h, code)
        })
        .collect())
}
