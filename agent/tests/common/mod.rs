//! Shared helpers of the agent's tests: building and installing the agent on ic-sim, calling
//! it with candid, uploading modules in chunks.
#![allow(dead_code)] // each test file uses a different subset

pub use agent::api::*;
pub use candid::{CandidType, Decode, Deserialize, Encode, Principal};
pub use ic_sim::{RejectResponse, Sim};

// Shared with the three-canister testbed: the principals, builds and hashing.
#[allow(unused_imports)] // each test file uses a different subset
pub use testbed::{CHUNK, CYCLES, gzip, installable, operator, sha256, stranger, wasm};

/// The watchdog principal configured in test agents (no canister behind it).
pub fn watchdog() -> Principal {
    Principal::self_authenticating(b"watchdog")
}

/// A simulator with one agent.
pub struct Env {
    /// The simulator.
    pub sim: Sim,
    /// The agent.
    pub agent: Principal,
}

/// The init argument of test agents.
pub fn init_arg(autonomy: Autonomy) -> Vec<u8> {
    Encode!(&AgentInit {
        operators: vec![operator()],
        watchdog: Some(watchdog()),
        staging: None,
        autonomy,
        sandbox: None,
        turn_loop: None,
    })
    .unwrap()
}

impl Env {
    /// An agent running build `name`, controlled by the operator and by itself.
    pub fn new(name: &str, autonomy: Autonomy) -> Env {
        Env::with_module(installable(name), autonomy)
    }

    /// An agent running `module` (the bytes as installed), controlled by the operator and by
    /// itself.
    pub fn with_module(module: Vec<u8>, autonomy: Autonomy) -> Env {
        let sim = Sim::new();
        let agent = sim.create_canister();
        sim.add_cycles(agent, CYCLES);
        sim.install_canister(agent, module, init_arg(autonomy), None);
        sim.set_controllers(agent, None, vec![operator(), agent])
            .expect("the creator may set controllers");
        Env { sim, agent }
    }

    /// The latest agent.
    pub fn latest(autonomy: Autonomy) -> Env {
        Env::new("agent", autonomy)
    }

    /// Raw update call.
    pub fn raw_update(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.sim.update_call(self.agent, caller, method, arg)
    }

    /// Update call decoded as `R`; panics on a reject.
    pub fn update<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        let bytes = self
            .raw_update(caller, method, arg)
            .unwrap_or_else(|e| panic!("{method}: rejected: {e}"));
        Decode!(&bytes, R).unwrap_or_else(|e| panic!("{method}: bad candid: {e}"))
    }

    /// Query call decoded as `R`; panics on a reject.
    pub fn query<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        let bytes = self
            .sim
            .query_call(self.agent, caller, method, arg)
            .unwrap_or_else(|e| panic!("{method}: rejected: {e}"));
        Decode!(&bytes, R).unwrap_or_else(|e| panic!("{method}: bad candid: {e}"))
    }

    /// `health`.
    pub fn health(&self) -> Health {
        self.query(stranger(), "health", Encode!().unwrap())
    }

    /// A tool call by the operator.
    pub fn tool(&self, name: &str, args: &str) -> Result<String, AgentError> {
        self.update(operator(), "call_tool", Encode!(&name, &args).unwrap())
    }

    /// Submits a task as the operator.
    pub fn submit(&self, description: &str, priority: Option<Priority>) -> Task {
        let arg = SubmitTask {
            description: description.into(),
            priority,
        };
        self.update::<Result<Task, AgentError>>(operator(), "submit_task", Encode!(&arg).unwrap())
            .expect("submit_task")
    }

    /// Remembers a fact as the operator.
    pub fn remember(&self, namespace: &str, key: &str, value: &str) {
        let fact = Fact {
            namespace: namespace.into(),
            key: key.into(),
            value: value.into(),
        };
        self.update::<Result<Option<String>, AgentError>>(
            operator(),
            "remember",
            Encode!(&fact).unwrap(),
        )
        .expect("remember");
    }

    /// `state_digest`.
    pub fn digest(&self) -> StateDigest {
        self.query(stranger(), "state_digest", Encode!().unwrap())
    }

    /// The digest of the records `list_tasks` and `list_facts` answer, computed here as
    /// `canister_api::digest` says: what the agent's kept digest must equal.
    pub fn digest_of_records(&self) -> (u64, u64, Vec<u8>) {
        let mut sum = canister_api::digest::RecordSum::default();
        let tasks = self.tasks();
        let facts = self.facts();
        for t in &tasks {
            sum.add_task(t);
        }
        for f in &facts {
            sum.add_fact(&f.namespace, &f.key, &f.value);
        }
        let (t, f) = (tasks.len() as u64, facts.len() as u64);
        (t, f, sum.sha256(t, f))
    }

    /// Asserts that the kept digest agrees with the records.
    pub fn assert_digest_matches_records(&self) {
        let d = self.digest();
        assert_eq!(
            (d.tasks, d.facts, d.sha256.clone()),
            self.digest_of_records(),
            "the kept digest disagrees with the records"
        );
    }

    /// Recalls a fact as the operator.
    pub fn recall(&self, namespace: Option<&str>, key: &str) -> Option<String> {
        let ns = namespace.map(str::to_string);
        self.query::<Result<Option<String>, AgentError>>(
            operator(),
            "recall",
            Encode!(&ns, &key).unwrap(),
        )
        .expect("recall")
    }

    /// Every task (every page of `list_tasks`).
    pub fn tasks(&self) -> Vec<Task> {
        let mut all = vec![];
        let mut from = Some(0u64);
        while let Some(at) = from {
            let page = self
                .query::<Result<TaskPage, AgentError>>(
                    operator(),
                    "list_tasks",
                    Encode!(&at, &u32::MAX).unwrap(),
                )
                .expect("list_tasks");
            all.extend(page.tasks);
            from = page.next_from;
        }
        all
    }

    /// One page of `list_facts(namespace, from)`.
    pub fn facts_page(&self, namespace: Option<&str>, from: Option<FactCursor>) -> FactPage {
        self.query::<Result<FactPage, AgentError>>(
            operator(),
            "list_facts",
            Encode!(&namespace.map(str::to_string), &from).unwrap(),
        )
        .expect("list_facts")
    }

    /// Every fact (every page of `list_facts`).
    pub fn facts(&self) -> Vec<Fact> {
        let mut all = vec![];
        let mut from = None;
        loop {
            let page = self.facts_page(None, from);
            all.extend(page.facts);
            match page.next_from {
                None => return all,
                next => from = next,
            }
        }
    }

    /// Uploads `bytes` as `kind` in 1 MiB chunks.
    pub fn upload(&self, kind: WasmKind, bytes: &[u8]) {
        for chunk in bytes.chunks(CHUNK) {
            let r: Result<UploadProgress, AgentError> = self.update(
                operator(),
                "upload_wasm_chunk",
                Encode!(&kind, &serde_bytes::ByteBuf::from(chunk.to_vec())).unwrap(),
            );
            r.expect("upload_wasm_chunk");
        }
    }

    /// `commit_wasm(kind, sha256)`.
    pub fn commit(&self, kind: WasmKind, sha: &[u8]) -> Result<CommittedWasm, AgentError> {
        self.update(
            operator(),
            "commit_wasm",
            Encode!(&kind, &serde_bytes::ByteBuf::from(sha.to_vec())).unwrap(),
        )
    }

    /// Uploads and commits the running module (the deployer's step).
    pub fn store_running(&self, build: &str) {
        let bytes = installable(build);
        self.upload(WasmKind::Running, &bytes);
        self.commit(WasmKind::Running, &sha256(&bytes))
            .expect("commit of the running Wasm");
    }

    /// Upgrades the agent to build `name`.
    pub fn upgrade_to(&self, name: &str) -> Result<(), RejectResponse> {
        self.sim.upgrade_canister(
            self.agent,
            installable(name),
            Encode!().unwrap(),
            Some(operator()),
        )
    }

    /// Every stored version (every page of `list_versions`), oldest first.
    pub fn versions(&self) -> Vec<VersionInfo> {
        let mut all: Vec<VersionInfo> = vec![];
        let mut from: Option<serde_bytes::ByteBuf> = None;
        loop {
            let page = self
                .query::<Result<VersionPage, AgentError>>(
                    operator(),
                    "list_versions",
                    Encode!(&from).unwrap(),
                )
                .expect("list_versions");
            all.extend(page.versions);
            match page.next_from {
                None => break,
                Some(next) => from = Some(serde_bytes::ByteBuf::from(next)),
            }
        }
        all.sort_by_key(|v| v.created_at);
        all
    }

    /// The whole audit log (first page).
    pub fn audit(&self) -> AuditPage {
        self.query::<Result<AuditPage, AgentError>>(
            operator(),
            "audit_log",
            Encode!(&0u64, &u64::MAX).unwrap(),
        )
        .expect("audit_log")
    }

    /// Upgrade `id` (latest if None).
    pub fn upgrade_record(&self, id: Option<u64>) -> Option<UpgradeRecord> {
        self.query::<Result<Option<UpgradeRecord>, AgentError>>(
            operator(),
            "upgrade_status",
            Encode!(&id).unwrap(),
        )
        .expect("upgrade_status")
    }
}
