//! The HTTP front: one thread owns the simulator, follows wall-clock time (timers and
//! heartbeats run while it serves) and answers the IC's endpoints:
//!
//! | endpoint | answer |
//! | --- | --- |
//! | `GET /api/v2/status` | CBOR with the root key |
//! | `POST /api/{v3,v4}/canister/<id>/call` | synchronous: a certificate of the outcome, or 202 when the message needs more than the sync budget (then poll `read_state`) |
//! | `POST /api/v2/canister/<id>/call` | asynchronous: 202 |
//! | `POST /api/{v2,v3}/canister/<id>/query` | the reply or reject, signed by the node key |
//! | `POST /api/{v2,v3}/canister/<id>/read_state`, `/api/v3/subnet/<id>/read_state` | a certificate of the requested paths |
//!
//! Every request is authenticated first ([`crate::auth`]); the simulator then decides as the IC
//! does (inspect_message, controllers, traps), so the server adds no behaviour of its own.
//! Calls to the management canister are routed by the effective canister id in the URL.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candid::Principal;
use ic_certification::Label;
use ic_sim::{RejectResponse, Sim, SimConfig};
use ic_transport_types::{
    Envelope, EnvelopeContent, QueryResponse, ReadStateResponse, RejectCode, ReplyResponse,
};

use crate::auth::authenticate;
use crate::error::{HttpError, ServeError};
use crate::ingress::{IngressHistory, IngressState};
use crate::keys::{Keys, cbor};
use crate::state_tree::{Effective, StateView};

/// The largest request body read (the IC's 2 MiB ingress limit plus the envelope).
const MAX_BODY: usize = 2 * 1024 * 1024 + 64 * 1024;

/// How a server is set up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The interface to listen on.
    pub host: String,
    /// The port (0: any free port).
    pub port: u16,
    /// Seeds the root and node keys (and the simulator, with [`ServerConfig::sim_config`]).
    pub seed: u64,
    /// How long a synchronous call may run before the server answers 202 (the replica's
    /// `ingress_message_certificate_timeout_seconds`, 10 s by default).
    pub sync_call_budget: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 4943,
            seed: 0,
            sync_call_budget: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The keys of this configuration's seed.
    pub fn keys(&self) -> Keys {
        Keys::from_seed(self.seed)
    }

    /// A simulator to serve: the subnet id derived from the root key, time starting now.
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            subnet_id: Some(self.keys().subnet_id()),
            initial_time_nanos: wall_clock_nanos(),
            ..SimConfig::default()
        }
    }
}

/// Nanoseconds since the UNIX epoch, now.
pub fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}

/// A simulator behind the IC's HTTP interface.
pub struct Server {
    sim: Sim,
    keys: Keys,
    http: tiny_http::Server,
    history: IngressHistory,
    sync_call_budget: Duration,
}

/// An HTTP answer.
struct Answer {
    status: u16,
    cbor: bool,
    body: Vec<u8>,
}

impl From<HttpError> for Answer {
    fn from(e: HttpError) -> Self {
        Answer {
            status: e.status,
            cbor: false,
            body: e.message.into_bytes(),
        }
    }
}

impl Answer {
    fn cbor(body: Vec<u8>) -> Self {
        Answer {
            status: 200,
            cbor: true,
            body,
        }
    }

    fn accepted(reason: &str) -> Self {
        Answer {
            status: 202,
            cbor: false,
            body: reason.as_bytes().to_vec(),
        }
    }
}

impl Server {
    /// Listens on `config.host:config.port` in front of `sim`, which must have been created
    /// with [`ServerConfig::sim_config`] (its subnet id is the root key's).
    pub fn bind(sim: Sim, config: &ServerConfig) -> Result<Server, ServeError> {
        let keys = config.keys();
        if sim.subnet_id() != keys.subnet_id() {
            return Err(ServeError::SubnetMismatch {
                sim: sim.subnet_id().to_text(),
                keys: keys.subnet_id().to_text(),
            });
        }
        let addr = format!("{}:{}", config.host, config.port);
        let http = tiny_http::Server::http(&addr).map_err(|e| ServeError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        Ok(Server {
            sim,
            keys,
            http,
            history: IngressHistory::default(),
            sync_call_budget: config.sync_call_budget,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.http.server_addr().to_ip().map_or(0, |a| a.port())
    }

    /// `http://127.0.0.1:PORT` (the URL clients use).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The DER-encoded root key clients pin.
    pub fn root_key(&self) -> &[u8] {
        self.keys.root_key_der()
    }

    /// The simulator.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Serves until `stop` is set (checked every 20 ms), running due timers as wall-clock time
    /// passes.
    pub fn serve(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.serve_once(Duration::from_millis(20));
        }
    }

    /// Catches simulated time up with the wall clock, then answers at most one request, waiting
    /// for one at most `wait`.
    pub fn serve_once(&mut self, wait: Duration) {
        self.catch_up();
        match self.http.recv_timeout(wait) {
            Ok(Some(request)) => self.answer(request),
            Ok(None) => {}
            Err(e) => eprintln!("ic-sim-http: receiving a request failed: {e}"),
        }
    }

    /// Moves simulated time to the wall clock, executing every timer, heartbeat and deadline
    /// that falls due on the way.
    fn catch_up(&mut self) {
        let now = wall_clock_nanos();
        let sim_now = self.sim.get_time().as_nanos_since_unix_epoch();
        if now > sim_now {
            self.sim.run_for(Duration::from_nanos(now - sim_now));
        }
        self.history.refresh(&self.sim);
    }

    fn now(&self) -> u64 {
        self.sim.get_time().as_nanos_since_unix_epoch()
    }

    fn answer(&mut self, mut request: tiny_http::Request) {
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body);
        let answer = match read {
            Err(e) => {
                HttpError::bad_request(format!("Could not read the request body: {e}")).into()
            }
            Ok(_) if body.len() > MAX_BODY => HttpError {
                status: 413,
                message: format!("Request is too large: more than {MAX_BODY} bytes."),
            }
            .into(),
            Ok(_) => {
                let method = request.method().clone();
                let url = request.url().to_string();
                self.route(&method, &url, &body)
                    .unwrap_or_else(Answer::from)
            }
        };
        let content_type = if answer.cbor {
            "application/cbor"
        } else {
            "text/plain; charset=utf-8"
        };
        let response = tiny_http::Response::from_data(answer.body)
            .with_status_code(answer.status)
            .with_header(
                tiny_http::Header::from_bytes("Content-Type", content_type)
                    .expect("a valid header"),
            );
        if let Err(e) = request.respond(response) {
            eprintln!("ic-sim-http: answering failed: {e}");
        }
    }

    fn route(
        &mut self,
        method: &tiny_http::Method,
        url: &str,
        body: &[u8],
    ) -> Result<Answer, HttpError> {
        let path = url.split('?').next().unwrap_or(url);
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            (tiny_http::Method::Get, ["api", "v2", "status"]) => Ok(self.status()),
            (tiny_http::Method::Post, ["api", version, "canister", id, endpoint]) => {
                let effective = parse_principal(id)?;
                match (*version, *endpoint) {
                    ("v2", "call") => self.call(effective, body, false),
                    ("v3" | "v4", "call") => self.call(effective, body, true),
                    ("v2" | "v3", "query") => self.query(effective, body),
                    ("v2" | "v3", "read_state") => {
                        self.read_state(Effective::Canister(effective), body)
                    }
                    _ => Err(not_found(path)),
                }
            }
            (tiny_http::Method::Post, ["api", "v3", "subnet", id, "read_state"]) => {
                let subnet = parse_principal(id)?;
                if subnet != self.keys.subnet_id() {
                    return Err(HttpError::not_found(format!(
                        "Subnet {subnet} is not this subnet ({}).",
                        self.keys.subnet_id()
                    )));
                }
                self.read_state(Effective::Subnet(subnet), body)
            }
            _ => Err(not_found(path)),
        }
    }

    fn status(&self) -> Answer {
        use serde_cbor::Value;
        let text = |s: &str| Value::Text(s.to_string());
        let map = std::collections::BTreeMap::from([
            (text("ic_api_version"), text("0.18.0")),
            (
                text("impl_version"),
                text(concat!("ic-sim-http ", env!("CARGO_PKG_VERSION"))),
            ),
            (text("replica_health_status"), text("healthy")),
            (
                text("root_key"),
                Value::Bytes(self.keys.root_key_der().to_vec()),
            ),
        ]);
        Answer::cbor(cbor(&Value::Map(map)))
    }

    /// Parses and authenticates an envelope.
    fn envelope<'a>(&self, body: &'a [u8], what: &str) -> Result<Envelope<'a>, HttpError> {
        let envelope: Envelope<'a> = serde_cbor::from_slice(body).map_err(|e| {
            HttpError::bad_request(format!("Could not parse body as {what} message: {e}"))
        })?;
        authenticate(&envelope, self.now()).map_err(|e| HttpError::bad_request(e.to_string()))?;
        Ok(envelope)
    }

    fn call(&mut self, effective: Principal, body: &[u8], sync: bool) -> Result<Answer, HttpError> {
        let envelope = self.envelope(body, "call")?;
        let content = envelope.content.as_ref();
        let EnvelopeContent::Call {
            canister_id,
            method_name,
            arg,
            sender,
            ingress_expiry,
            ..
        } = content
        else {
            return Err(HttpError::bad_request(
                "Could not parse body as call message: the request_type is not `call`",
            ));
        };
        check_effective(*canister_id, effective)?;
        let request_id: [u8; 32] = *content.to_request_id();
        if let Some(entry) = self.history.get(&request_id) {
            // A duplicate: the IC executes a message once.
            return Ok(match entry.state {
                IngressState::Processing(_) if sync => Answer::accepted(
                    "Duplicate request. Message is already being tracked and executed.",
                ),
                IngressState::Processing(_) => Answer::accepted(""),
                _ if sync => self.certificate_answer(&request_id),
                _ => Answer::accepted(""),
            });
        }
        self.history.make_room(self.now())?;
        let id = match self
            .sim
            .submit_call(*canister_id, *sender, method_name, arg.clone())
        {
            Ok(id) => id,
            Err(reject) => return Ok(non_replicated_rejection(&reject)),
        };
        self.history
            .insert(request_id, *sender, *ingress_expiry, id.clone());
        if !sync {
            return Ok(Answer::accepted(""));
        }
        let deadline = Instant::now() + self.sync_call_budget;
        while self.sim.ingress_status(id.clone()).is_none() {
            if Instant::now() >= deadline {
                return Ok(Answer::accepted(
                    "Message did not complete execution and certification within the replica defined timeout.",
                ));
            }
            if self.sim.has_work() {
                self.sim.tick();
            } else {
                // The message waits on time (a timer, a bounded call, a stop): let it pass.
                std::thread::sleep(Duration::from_millis(5));
                self.catch_up();
            }
        }
        self.history.refresh(&self.sim);
        Ok(self.certificate_answer(&request_id))
    }

    fn certificate_answer(&self, request_id: &[u8; 32]) -> Answer {
        let tree = self.view().request_status(request_id);
        let certificate = self.keys.certify(tree);
        use serde_cbor::Value;
        let map = std::collections::BTreeMap::from([
            (Value::Text("certificate".into()), Value::Bytes(certificate)),
            (Value::Text("status".into()), Value::Text("replied".into())),
        ]);
        Answer::cbor(cbor(&Value::Map(map)))
    }

    fn query(&mut self, effective: Principal, body: &[u8]) -> Result<Answer, HttpError> {
        let envelope = self.envelope(body, "query")?;
        let content = envelope.content.as_ref();
        let EnvelopeContent::Query {
            canister_id,
            method_name,
            arg,
            sender,
            ..
        } = content
        else {
            return Err(HttpError::bad_request(
                "Could not parse body as query message: the request_type is not `query`",
            ));
        };
        check_effective(*canister_id, effective)?;
        let response = match self
            .sim
            .query_call(*canister_id, *sender, method_name, arg.clone())
        {
            Ok(reply) => QueryResponse::Replied {
                reply: ReplyResponse { arg: reply },
                signatures: vec![],
            },
            Err(reject) => QueryResponse::Rejected {
                reject: transport_reject(&reject),
                signatures: vec![],
            },
        };
        let signed = self
            .keys
            .sign_query(response, content.to_request_id(), self.now());
        Ok(Answer::cbor(cbor(&signed)))
    }

    fn read_state(&mut self, effective: Effective, body: &[u8]) -> Result<Answer, HttpError> {
        let envelope = self.envelope(body, "read_state")?;
        let EnvelopeContent::ReadState { paths, sender, .. } = envelope.content.as_ref() else {
            return Err(HttpError::bad_request(
                "Could not parse body as read_state message: the request_type is not `read_state`",
            ));
        };
        check_paths(paths)?;
        self.history.refresh(&self.sim);
        let tree = self.view().read(*sender, effective, paths)?;
        let certificate = self.keys.certify(tree);
        Ok(Answer::cbor(cbor(&ReadStateResponse { certificate })))
    }

    fn view(&self) -> StateView<'_> {
        StateView {
            sim: &self.sim,
            keys: &self.keys,
            history: &self.history,
        }
    }
}

/// The replica's limits on a read_state request (`validate_paths_width_and_depth`).
fn check_paths(paths: &[Vec<Label>]) -> Result<(), HttpError> {
    if paths.len() > 1_000 {
        return Err(HttpError::bad_request(format!(
            "Too many paths in read state request: got {} paths, but at most 1000 are allowed.",
            paths.len()
        )));
    }
    if let Some(long) = paths.iter().find(|p| p.len() > 127) {
        return Err(HttpError::bad_request(format!(
            "At least one path in read state request is too deep: got {} labels, but at most 127 are allowed.",
            long.len()
        )));
    }
    Ok(())
}

/// A call or query to a canister other than the management canister must name the canister of
/// the URL (replica: `IngressValidator::validate_ingress_message`).
fn check_effective(canister_id: Principal, effective: Principal) -> Result<(), HttpError> {
    if canister_id != Principal::management_canister() && canister_id != effective {
        return Err(HttpError::bad_request(format!(
            "Specified CanisterId {canister_id} does not match effective canister id in URL {effective}"
        )));
    }
    Ok(())
}

fn parse_principal(text: &str) -> Result<Principal, HttpError> {
    Principal::from_text(text)
        .map_err(|e| HttpError::bad_request(format!("Could not parse principal id `{text}`: {e}")))
}

fn not_found(path: &str) -> HttpError {
    HttpError::not_found(format!("No such endpoint: {path}"))
}

fn transport_reject(reject: &RejectResponse) -> ic_transport_types::RejectResponse {
    ic_transport_types::RejectResponse {
        reject_code: RejectCode::try_from(reject.reject_code as u64)
            .unwrap_or(RejectCode::SysTransient),
        reject_message: reject.reject_message.clone(),
        error_code: Some(reject.error_code.to_string()),
    }
}

/// A message the IC refused before execution (the ingress filter: inspect_message, a missing
/// or stopped canister, cycles): 200 with `status: non_replicated_rejection`.
fn non_replicated_rejection(reject: &RejectResponse) -> Answer {
    use serde_cbor::Value;
    let map = std::collections::BTreeMap::from([
        (
            Value::Text("error_code".into()),
            Value::Text(reject.error_code.to_string()),
        ),
        (
            Value::Text("reject_code".into()),
            Value::Integer(reject.reject_code as i128),
        ),
        (
            Value::Text("reject_message".into()),
            Value::Text(reject.reject_message.clone()),
        ),
        (
            Value::Text("status".into()),
            Value::Text("non_replicated_rejection".into()),
        ),
    ]);
    Answer::cbor(cbor(&Value::Map(map)))
}
