//! User management over HTTP for the office (admin, or the bootstrap write token that creates
//! the first admin): list, add, disable, issue an API token.

use crate::auth::{Admin, Role, UserInfo};
use crate::web::{blocking, AppState, WebError};
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

pub async fn list(
    State(state): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<Vec<UserInfo>>, WebError> {
    let users = state.acting.users.clone();
    Ok(Json(blocking(move || Ok(users.list()?)).await?))
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password: String,
}

pub async fn add(
    State(state): State<AppState>,
    Admin(_): Admin,
    Json(u): Json<NewUser>,
) -> Result<Json<UserInfo>, WebError> {
    let users = state.acting.users.clone();
    Ok(Json(
        blocking(move || Ok(users.add(u.name.trim(), u.role, &u.password)?)).await?,
    ))
}

pub async fn disable(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> Result<Json<UserInfo>, WebError> {
    let users = state.acting.users.clone();
    Ok(Json(blocking(move || Ok(users.disable(&name)?)).await?))
}

#[derive(Debug, Deserialize)]
pub struct TokenBody {
    #[serde(default)]
    pub label: String,
}

pub async fn token(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(name): Path<String>,
    body: Option<Json<TokenBody>>,
) -> Result<Json<serde_json::Value>, WebError> {
    let users = state.acting.users.clone();
    let label = body.map(|Json(b)| b.label).unwrap_or_default();
    let token = blocking(move || Ok(users.issue_token(&name, &label)?)).await?;
    Ok(Json(serde_json::json!({ "token": token })))
}
