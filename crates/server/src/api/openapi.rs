//! The OpenAPI 3.1 document, generated from the handlers' annotations and the proto types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, keys, log, operator, pki, sign, system, tokens};

#[derive(OpenApi)]
#[openapi(
    info(title = "Signet", description = "Self-hosted code signing: keys never leave, every signature is audited."),
    paths(
        keys::create, keys::list, keys::show, keys::rotate, keys::disable, keys::enable,
        sign::sign, sign::sign_batch,
        tokens::create, tokens::list, tokens::revoke,
        audit::list, system::status,
        log::checkpoint, log::key, log::entries, log::inclusion, log::consistency,
        operator::seal_status, operator::unseal, operator::seal, operator::rotate_kek,
        pki::create_ca, pki::list_cas, pki::show_ca, pki::crl, pki::issue, pki::key_certificates,
        pki::certificates, pki::certificate, pki::revoke, pki::csr, pki::import, pki::set_policy,
        pki::create_tsa, pki::show_tsa, pki::timestamp, pki::sign_cms,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}
