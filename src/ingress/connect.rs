//! CONNECT: parse and check the target, then either intercept it (TLS terminated with a minted leaf)
//! or tunnel it blindly. Failures before the tunnel opens are answered with a status and
//! `Proxy-Status`; nothing is upgraded then.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{intercept, tunnel, Ingress};
use crate::{
    body::{self, Body},
    error::ProxyError,
    shutdown::ConnectionPermit,
    target::Target,
};

/// What to do with an accepted CONNECT.
enum ConnectPlan {
    Intercept,
    Tunnel(TcpStream),
}

/// Checks the CONNECT request, answers 200 and spawns the tunnel, or answers why not.
pub async fn handle(ingress: &Arc<Ingress>, mut request: Request<Incoming>) -> Response<Body> {
    let target = match Target::from_connect(request.uri()) {
        Ok(target) => target,
        Err(reason) => return refuse(ProxyError::BadRequest(reason), request.uri()),
    };
    let plan = match plan(ingress, &target).await {
        Ok(plan) => plan,
        Err(error) => return refuse(error, request.uri()),
    };
    let ingress_for_task = Arc::clone(ingress);
    let permit = request.extensions_mut().remove::<ConnectionPermit>();
    let upgrade = hyper::upgrade::on(request);
    ingress.shutdown.spawn(async move {
        let _permit = permit;
        let upgraded = match upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(error) => return tracing::debug!(%error, "client left before the tunnel opened"),
        };
        match plan {
            ConnectPlan::Intercept => intercept::serve_intercepted(&ingress_for_task, upgraded, target).await,
            ConnectPlan::Tunnel(upstream) => {
                tunnel::relay(&ingress_for_task, upgraded, upstream, &target).await
            }
        }
    });
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::OK;
    response
}

/// Applies policy: allowed port, intercept or tunnel, and checks the upstream is reachable.
async fn plan(ingress: &Ingress, target: &Target) -> Result<ConnectPlan, ProxyError> {
    let config = ingress.config.load();
    if let Some(why) = config.refuses_port(target) {
        return Err(ProxyError::Denied(format!("CONNECT to {target}: {why}")));
    }
    if ingress.intercepts(&config, target) {
        if !config.live.offline {
            ingress.dialer.resolve(&target.host, target.port).await?;
        }
        return Ok(ConnectPlan::Intercept);
    }
    if config.live.offline {
        return Err(ProxyError::Offline(format!("cannot tunnel to {target} while offline")));
    }
    Ok(ConnectPlan::Tunnel(ingress.dialer.connect(&target.host, target.port).await?))
}

fn refuse(error: ProxyError, uri: &http::Uri) -> Response<Body> {
    tracing::info!(target = %uri, %error, "CONNECT refused");
    error.into_response()
}
