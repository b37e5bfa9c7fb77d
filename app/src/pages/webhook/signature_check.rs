//! The webhook page's signature check: paste a request as the endpoint received it (headers
//! and body) and see whether it verifies and, if not, why. Once the WebAssembly has loaded the
//! check runs in the browser, with the signer that signs deliveries
//! (`hookline_domain::signature`) and the webhook's secrets from [`signature_material`];
//! before that the form posts to [`check_signature`], which runs the same check on the server
//! and sends the browser back here with the verdict in the address.

use hookline_domain::signature::{ReceivedRequest, Verdict, diagnose};
use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_query_map;

mod server;

use server::{CheckSignature, signature_material};

use crate::components::ErrorBox;
use crate::error::AppError;

#[component]
pub(crate) fn SignatureCheck(id: String) -> impl IntoView {
    let query = use_query_map();
    // A plain form post's verdict, in the address the server sent the browser back to.
    let posted = move || query.read().get("signature_check").and_then(|v| Verdict::decode(&v));
    let checked = RwSignal::new(None::<Result<Verdict, AppError>>);
    let checking = RwSignal::new(false);
    let headers = NodeRef::<html::Textarea>::new();
    let body = NodeRef::<html::Textarea>::new();
    let secret = NodeRef::<html::Input>::new();
    let webhook = StoredValue::new(id.clone());
    let check_here = move |ev: leptos::ev::SubmitEvent| {
        let (Some(headers), Some(body)) = (headers.get(), body.get()) else { return };
        ev.prevent_default();
        let request = ReceivedRequest::parse(&headers.value(), &body.value());
        let entered = secret.get().map(|s| s.value());
        let event_id = request.webhook_id().map(str::to_string);
        checking.set(true);
        leptos::task::spawn_local(async move {
            let verdict = signature_material(webhook.get_value(), event_id).await.map(|m| {
                diagnose(&request, &m.secrets, entered.as_deref(), m.original_body.as_deref(), m.now_secs)
            });
            checked.set(Some(verdict));
            checking.set(false);
        });
    };
    let verdict = move || checked.get().or_else(|| posted().map(Ok));
    let check_url = <CheckSignature as ServerFn>::url();
    view! {
        <section class="card" id="signature-check" aria-labelledby="signature-check-title">
            <h2 id="signature-check-title">"Check a signature"</h2>
            <p class="hint">
                "Paste a request as your endpoint received it, to see whether its signature verifies "
                "and, if not, why. The check runs in your browser; nothing you paste is stored."
            </p>
            <form method="post" action=check_url class="form signature-check" on:submit=check_here>
                <input type="hidden" name="id" value=id/>
                <label for="check-headers">"Headers, one per line"</label>
                <textarea
                    id="check-headers"
                    name="headers"
                    rows="5"
                    spellcheck="false"
                    autocomplete="off"
                    placeholder="webhook-id: …\nwebhook-timestamp: …\nwebhook-signature: v1,…"
                    node_ref=headers
                ></textarea>
                <label for="check-body">"Body, exactly as received"</label>
                <textarea id="check-body" name="body" rows="6" spellcheck="false" autocomplete="off" node_ref=body></textarea>
                <label for="check-secret">"The secret your endpoint verifies with " <span class="optional">"(optional)"</span></label>
                <input id="check-secret" name="secret" type="text" autocomplete="off" spellcheck="false" placeholder="whsec_…" node_ref=secret/>
                <div class="actions">
                    <button type="submit" id="check-signature" disabled=move || checking.get()>
                        {move || if checking.get() { "Checking…" } else { "Check signature" }}
                    </button>
                </div>
            </form>
            {move || verdict().map(|v| match v {
                Ok(v) => view! {
                    <div class=if v.verifies() { "result ok" } else { "result bad" } role="status" id="signature-verdict">
                        <strong>{v.title()}</strong>" "{v.sentence()}
                    </div>
                }.into_any(),
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            })}
        </section>
    }
}
