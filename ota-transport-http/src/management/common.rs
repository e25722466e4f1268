//! Small helpers shared by the resource modules: parsing kinds, states and id lists from
//! query strings and paths, with errors that say what to write instead.

use super::error::ApiError;
use ota_core::campaign::CampaignState;
use ota_core::{PackageKind, UpdateState};
use std::str::FromStr;
use uuid::Uuid;

/// A package kind from a path or query value (`FIRMWARE`, `SOFTWARE`, `fw`, `sw`).
pub fn parse_kind(value: &str) -> Result<PackageKind, ApiError> {
    PackageKind::from_str(value).map_err(|e| ApiError::bad_request("invalid_kind", e.to_string()))
}

/// An optional kind.
pub fn parse_opt_kind(value: Option<&str>) -> Result<Option<PackageKind>, ApiError> {
    value.map(parse_kind).transpose()
}

/// A comma-separated list of update states (`QUEUED,FAILED`).
pub fn parse_update_states(value: Option<&str>) -> Result<Vec<UpdateState>, ApiError> {
    split(value)
        .map(|s| {
            UpdateState::from_str(s).map_err(|_| {
                ApiError::bad_request(
                    "invalid_state",
                    format!(
                        "unknown update state {s:?}; use one of {}",
                        UpdateState::ALL.map(|s| s.name()).join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// A comma-separated list of campaign states (`RUNNING,PAUSED`).
pub fn parse_campaign_states(value: Option<&str>) -> Result<Vec<CampaignState>, ApiError> {
    split(value)
        .map(|s| {
            CampaignState::ALL
                .into_iter()
                .find(|c| c.name().eq_ignore_ascii_case(s))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_state",
                        format!(
                            "unknown campaign state {s:?}; use one of {}",
                            CampaignState::ALL.map(|s| s.name()).join(", ")
                        ),
                    )
                })
        })
        .collect()
}

/// A comma-separated list of UUIDs.
pub fn parse_ids(what: &str, value: Option<&str>) -> Result<Vec<Uuid>, ApiError> {
    split(value)
        .map(|s| {
            Uuid::parse_str(s).map_err(|_| {
                ApiError::bad_request("invalid_id", format!("{what} {s:?} is not a UUID"))
            })
        })
        .collect()
}

fn split(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
