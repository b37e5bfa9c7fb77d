//! Paging through the dashboard's lists with the API's contract: a page is asked for with the
//! cursor the page before it gave (`next_cursor`), a fixed number of items at a time. The
//! links carry the cursor in the page's address, so they work before the WebAssembly has
//! loaded. The address keeps the cursors of every page before too (one `name=cursor` pair
//! each, oldest first), so "Previous" needs nothing the server would have to remember.

use leptos::prelude::*;
use leptos_router::params::ParamsMap;

/// Items per page of a dashboard list: the API's default page.
#[cfg(feature = "ssr")]
pub const PAGE_SIZE: u64 = 50;

/// Where one list of a page is: the cursors that led to the page shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trail {
    /// The query parameter this list keeps its cursors in.
    name: &'static str,
    cursors: Vec<String>,
}

impl Trail {
    pub fn from_query(query: &ParamsMap, name: &'static str) -> Self {
        let cursors = query.get_all(name).unwrap_or_default().into_iter().filter(|c| !c.is_empty()).collect();
        Trail { name, cursors }
    }

    /// The cursor of the page shown; none on the first page.
    pub fn cursor(&self) -> Option<String> {
        self.cursors.last().cloned()
    }

    /// The links to the pages before and after this one (`next_cursor` as the list gave it).
    /// The rest of the address (other lists' places, a filter, the store) is kept, but for
    /// empty parameters.
    pub fn links(&self, path: &str, query: &ParamsMap, next_cursor: Option<&str>) -> PageLinks {
        self.links_keeping(path, query, next_cursor, |_| true)
    }

    /// As [`Trail::links`], keeping only the parameters `keep` accepts.
    pub fn links_keeping(
        &self,
        path: &str,
        query: &ParamsMap,
        next_cursor: Option<&str>,
        keep: impl Fn(&str) -> bool,
    ) -> PageLinks {
        let kept: Vec<(&str, &str)> = query
            .into_iter()
            .map(|(k, v)| (&**k, v))
            .filter(|(k, v)| *k != self.name && !k.starts_with("__") && !v.is_empty() && keep(k))
            .collect();
        let previous = (!self.cursors.is_empty())
            .then(|| address(path, &kept, self.name, &self.cursors[..self.cursors.len() - 1]));
        let next = next_cursor.map(|c| {
            let mut cursors = self.cursors.clone();
            cursors.push(c.to_string());
            address(path, &kept, self.name, &cursors)
        });
        PageLinks { previous, next }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageLinks {
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// `path` with the `kept` parameters and this list's cursors. Leptos's pairs for a form
/// error (`__err` and its kin) are never kept: they belong to the page they came back to.
fn address(path: &str, kept: &[(&str, &str)], name: &str, cursors: &[String]) -> String {
    let mut pairs = kept.to_vec();
    pairs.extend(cursors.iter().map(|c| (name, c.as_str())));
    href(path, &pairs)
}

/// `path` with a query string of `pairs`, encoded (an empty query leaves the path alone).
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    match serde_urlencoded::to_string(pairs) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// A list's links to the pages before and after it, if there are any. `list` names the
/// list (`keys`, `stores`), for the links' ids.
#[component]
pub fn Pager(links: PageLinks, list: &'static str, #[prop(into)] label: String) -> impl IntoView {
    let PageLinks { previous, next } = links;
    (previous.is_some() || next.is_some()).then(move || {
        view! {
            <nav class="pager" aria-label=label>
                {previous.map(|href| view! { <a id=format!("{list}-previous") href=href rel="prev">"← Previous"</a> })}
                " "
                {next.map(|href| view! { <a id=format!("{list}-next") href=href rel="next">"Next →"</a> })}
            </nav>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&'static str, &str)]) -> ParamsMap {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn the_first_page_links_only_to_the_next() {
        let q = query(&[("store", "store a&b")]);
        let trail = Trail::from_query(&q, "keys");
        assert_eq!(trail.cursor(), None);
        let links = trail.links("/settings/api", &q, Some("k-50"));
        assert_eq!(links.previous, None);
        assert_eq!(links.next.as_deref(), Some("/settings/api?store=store+a%26b&keys=k-50"));
        assert_eq!(trail.links("/settings/api", &q, None), PageLinks::default());
    }

    #[test]
    fn a_later_page_goes_back_one_page_and_keeps_the_other_lists_place() {
        let q = query(&[("keys", "k-50"), ("webhooks", "w-50"), ("keys", "k-100"), ("__err", "x")]);
        let trail = Trail::from_query(&q, "keys");
        assert_eq!(trail.cursor().as_deref(), Some("k-100"));
        let links = trail.links("/settings/api", &q, Some("k-150"));
        assert_eq!(links.previous.as_deref(), Some("/settings/api?webhooks=w-50&keys=k-50"));
        assert_eq!(
            links.next.as_deref(),
            Some("/settings/api?webhooks=w-50&keys=k-50&keys=k-100&keys=k-150")
        );
        let second = query(&[("keys", "k-50")]);
        let back = Trail::from_query(&second, "keys").links("/settings/api", &second, None);
        assert_eq!(back.previous.as_deref(), Some("/settings/api"));
    }
}
