//! The audit log: every management action, filtered by actor, action, target and time.

use super::error::ApiResult;
use super::error::ErrorBody;
use super::extract::{AppState, Caller, CanRead, Json, Query};
use super::paging::{filtered_page, PageOf, PageParams};
use axum::extract::State;
use ota_core::audit::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// An audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Who acted.
    pub actor: String,
    /// What was done, e.g. `package.upload`, `assignment.set`, `campaign.start`.
    pub action: String,
    /// What it was done to, e.g. `package 0190...`.
    pub target: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            actor: e.actor,
            action: e.action,
            target: e.target,
            at: e.at,
            details: e.details,
        }
    }
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only entries of this actor (exact).
    pub actor: Option<String>,
    /// Only actions starting with this text (`campaign.` for every campaign action).
    pub action: Option<String>,
    /// Only targets containing this text (an id, `device`, ...).
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries before this time.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// The audit log, oldest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<AuditView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(filter): Query<AuditFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<AuditView>>> {
    let request = page.request()?;
    let store = state.ota.store().clone();
    let tenant = caller.tenant();
    let (items, next_cursor) = filtered_page(
        request,
        state.options.max_scan,
        |p| {
            let store = store.clone();
            async move { Ok(store.list_audit(tenant, p).await?) }
        },
        |e: &AuditEntry| {
            filter.actor.as_ref().is_none_or(|a| &e.actor == a)
                && filter
                    .action
                    .as_ref()
                    .is_none_or(|a| e.action.starts_with(a.as_str()))
                && filter
                    .target
                    .as_ref()
                    .is_none_or(|t| e.target.contains(t.as_str()))
                && filter.from.is_none_or(|f| e.at >= f)
                && filter.to.is_none_or(|t| e.at < t)
        },
        |e| e.id,
    )
    .await?;
    Ok(Json(PageOf {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}
