//! A fresh database for one bench run: a new SQLite file in the temporary directory, or a new
//! database on the PostgreSQL server `pg` (an admin URL) named after `prefix`.

use sea_orm::{ConnectionTrait, Database};

pub async fn fresh_database(prefix: &str, kind: &str, pg: Option<&str>) -> String {
    match kind {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())
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
            format!("{base}/{name}{query}")
        }
    }
}
