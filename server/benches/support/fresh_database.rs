//! A fresh database for one bench run: a new SQLite file in the temporary directory, or a new
//! database on the PostgreSQL server `pg` (an admin URL) named after `prefix`.

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database};

/// A bench's database, used as its URL. A SQLite file's directory is removed when this is
/// dropped: a ten-million-row seed takes about 11 GB, and a machine that runs CI beside the
/// benches must get it back. (A database in the bench's own PostgreSQL cluster goes with the
/// cluster.)
pub struct FreshDatabase {
    url: String,
    dir: Option<PathBuf>,
}

impl std::ops::Deref for FreshDatabase {
    type Target = str;

    fn deref(&self) -> &str {
        &self.url
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn fresh_database(prefix: &str, kind: &str, pg: Option<&str>) -> FreshDatabase {
    match kind {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            FreshDatabase { url, dir: Some(dir) }
        }
        _ => {
            let admin_url = pg.expect("a PostgreSQL server for the bench");
            let name = format!("{}_{}", prefix.replace('-', "_"), uuid::Uuid::new_v4().simple());
            let admin = Database::connect(admin_url).await.unwrap();
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            let (base, query) = admin_url
                .split_once('?')
                .map(|(b, q)| (b, format!("?{q}")))
                .unwrap_or((admin_url, String::new()));
            let (base, _) = base.rsplit_once('/').unwrap();
            FreshDatabase { url: format!("{base}/{name}{query}"), dir: None }
        }
    }
}
