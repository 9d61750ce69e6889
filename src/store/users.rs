//! The merchant's users: one per `user_id`, with the phone and details a request uses.
//! The address is sealed under the master key (`sealed`); the name and phone are not,
//! because the case search looks them up.

use super::point_reads::Key;
use super::{is_unique_violation, Store};
use crate::clock::now_ms;
use crate::error::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub merchant_id: i64,
    pub user_id: String,
    pub phone: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub phone: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}
impl Store {
    pub(super) fn user_from_row(&self, row: &AnyRow) -> Result<User> {
        let address: Option<String> = row.try_get("address")?;
        Ok(User {
            id: row.try_get("id")?,
            merchant_id: row.try_get("merchant_id")?,
            user_id: row.try_get("user_id")?,
            phone: row.try_get("phone")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            address: address.map(|a| self.open_text(&a)).transpose()?,
        })
    }

    /// Inserts a user; `Ok(None)` when the merchant already has that `user_id`.
    pub async fn insert_user(&self, merchant_id: i64, user: &NewUser) -> Result<Option<User>> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        if user.address.is_some() {
            self.check_key_in(&mut tx).await?;
        }
        let result = sqlx::query(
            "INSERT INTO users (merchant_id, user_id, phone, email, name, address, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(merchant_id)
        .bind(&user.user_id)
        .bind(&user.phone)
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.address.as_deref().map(|a| self.seal_text(a)))
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        if result.is_ok() {
            tx.commit().await?;
        }
        match result {
            Ok(row) => Ok(Some(User {
                id: row.try_get("id")?,
                merchant_id,
                user_id: user.user_id.clone(),
                phone: user.phone.clone(),
                email: user.email.clone(),
                name: user.name.clone(),
                address: user.address.clone(),
            })),
            Err(err) if is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn user_by_ref(&self, merchant_id: i64, id: i64) -> Result<Option<User>> {
        if let Some(reads) = &self.reads {
            return reads.user(Key::UserRef(merchant_id, id)).await;
        }
        let row = sqlx::query("SELECT * FROM users WHERE merchant_id = $1 AND id = $2")
            .bind(merchant_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(|r| self.user_from_row(r)).transpose()
    }

    pub async fn user_by_user_id(&self, merchant_id: i64, user_id: &str) -> Result<Option<User>> {
        if let Some(reads) = &self.reads {
            return reads
                .user(Key::UserId(merchant_id, user_id.to_string()))
                .await;
        }
        let row = sqlx::query("SELECT * FROM users WHERE merchant_id = $1 AND user_id = $2")
            .bind(merchant_id)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(|r| self.user_from_row(r)).transpose()
    }

    /// Writes the user's changeable fields (email, name, address).
    pub async fn update_user(&self, user: &User) -> Result<()> {
        let mut tx = self.write.begin().await?;
        if user.address.is_some() {
            self.check_key_in(&mut tx).await?;
        }
        sqlx::query(
            "UPDATE users SET email = $1, name = $2, address = $3, updated_at = $4 \
             WHERE merchant_id = $5 AND id = $6",
        )
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.address.as_deref().map(|a| self.seal_text(a)))
        .bind(now_ms())
        .bind(user.merchant_id)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
