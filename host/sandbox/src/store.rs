//! The stand-in's state: objects by resource, resource versions, the event history that watches
//! replay, and the controllers the API server itself runs (CRD registration, garbage collection
//! by owner references, namespace deletion). Pure and synchronous: the HTTP layer wraps it in a
//! lock and broadcasts the events each call produces.

use crate::ApiError;
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// `(group, plural, namespace or "", name)`.
pub type Key = (String, String, String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch sends it.
#[derive(Clone, Debug)]
pub struct Event {
    pub revision: u64,
    pub kind: EventKind,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Arc<Value>,
    /// The object before the change (for watches with selectors: leaving a selection is a
    /// DELETED event, entering it an ADDED one).
    pub previous: Option<Arc<Value>>,
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    #[default]
    Background,
    Foreground,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    /// `gracePeriodSeconds`: for a pod bound to a node, how long its kubelet may take to stop
    /// it (default: the pod's `terminationGracePeriodSeconds`, else 30); 0 removes it now.
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// A list request's filters and paging.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// Supplies `creationTimestamp` and `deletionTimestamp` values (RFC 3339).
pub type Clock = Box<dyn Fn() -> String + Send + Sync>;

pub fn system_clock() -> Clock {
    Box::new(|| {
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string()
    })
}

pub struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    uids: HashMap<String, Key>,
    revision: u64,
    history: VecDeque<Event>,
    history_limit: usize,
    outbox: Vec<Event>,
    counter: u64,
    pub(crate) clock: Clock,
}

const FOREGROUND: &str = "foregroundDeletion";

pub(crate) fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn meta(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object) {
        v["metadata"] = json!({});
    }
    v["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn finalizers(v: &Value) -> Vec<String> {
    resources::string_list(v.pointer("/metadata/finalizers"))
}

fn is_pod(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "pods"
}

fn owner_uids(v: &Value) -> Vec<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The object without metadata and status: what `generation` counts changes of.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(map) = v.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    v
}

impl Store {
    pub fn new(clock: Clock) -> Self {
        let mut store = Self {
            types: resources::builtin(),
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            revision: 0,
            history: VecDeque::new(),
            history_limit: 10_000,
            outbox: Vec::new(),
            counter: 0,
            clock,
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let rt = store
                .resource_type("", "v1", "namespaces")
                .cloned()
                .expect("namespaces are built in");
            let _ = store.create(&rt, None, json!({"metadata": {"name": ns}}), false);
        }
        store.outbox.clear();
        store
    }

    /// How many events watches can replay; older resource versions get 410 Gone.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn resource_type(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// Events produced since the last call, for broadcasting.
    pub fn take_outbox(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox)
    }

    /// Events after `revision`, or 410 Gone when the history no longer reaches back that far.
    pub fn events_since(&self, revision: u64) -> Result<Vec<Event>, ApiError> {
        let oldest = self
            .history
            .front()
            .map(|e| e.revision)
            .unwrap_or(self.revision + 1);
        if revision + 1 < oldest && revision < self.revision {
            return Err(ApiError::gone(format!(
                "too old resource version: {revision} ({})",
                oldest - 1
            )));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.revision > revision)
            .cloned()
            .collect())
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        let ns = if rt.namespaced {
            namespace.unwrap_or("default")
        } else {
            ""
        };
        (
            rt.group.clone(),
            rt.plural.clone(),
            ns.to_string(),
            name.to_string(),
        )
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Stores a write and records its event; an Event's other view (`events::twin`) is written
    /// with it, so core/v1 and events.k8s.io/v1 show the same Events.
    fn commit(&mut self, kind: EventKind, key: Key, object: Value) -> Value {
        let twin = crate::events::twin(&key);
        let written = self.commit_one(kind, key, object);
        if let Some(twin) = twin {
            match kind {
                EventKind::Deleted => {
                    if let Some(other) = self.objects.get(&twin).cloned() {
                        self.commit_one(EventKind::Deleted, twin, other);
                    }
                }
                _ => {
                    let converted = crate::events::convert(&written, &twin.0);
                    let kind = match self.objects.contains_key(&twin) {
                        true => EventKind::Modified,
                        false => EventKind::Added,
                    };
                    self.commit_one(kind, twin, converted);
                }
            }
        }
        written
    }

    fn commit_one(&mut self, kind: EventKind, key: Key, mut object: Value) -> Value {
        let previous = self.objects.get(&key).cloned().map(Arc::new);
        self.revision += 1;
        meta(&mut object).insert(
            "resourceVersion".into(),
            Value::String(self.revision.to_string()),
        );
        let uid = text(&object, "/metadata/uid").map(str::to_string);
        match kind {
            EventKind::Deleted => {
                self.objects.remove(&key);
                if let Some(uid) = uid {
                    self.uids.remove(&uid);
                }
            }
            _ => {
                if let Some(uid) = uid {
                    self.uids.insert(uid, key.clone());
                }
                self.objects.insert(key.clone(), object.clone());
            }
        }
        let event = Event {
            revision: self.revision,
            kind,
            group: key.0,
            plural: key.1,
            namespace: key.2,
            object: Arc::new(object.clone()),
            previous,
        };
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        self.outbox.push(event);
        object
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    /// Objects of a type matching the options, and the `continue` token of the next page.
    pub fn list(
        &self,
        rt: &ResourceType,
        options: &ListOptions,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let start = match &options.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut next = None;
        for ((group, plural, ns, name), object) in &self.objects {
            if group != &rt.group || plural != &rt.plural {
                continue;
            }
            if let Some(want) = &options.namespace
                && rt.namespaced
                && ns != want
            {
                continue;
            }
            if let Some((start_ns, start_name)) = &start
                && (ns, name) <= (start_ns, start_name)
            {
                continue;
            }
            if !options.labels.matches(object) || !options.fields.matches(object) {
                continue;
            }
            if options.limit.is_some_and(|limit| items.len() >= limit) {
                next = items.last().map(|last: &Value| {
                    encode_continue(
                        text(last, "/metadata/namespace").unwrap_or(""),
                        text(last, "/metadata/name").unwrap_or(""),
                    )
                });
                break;
            }
            items.push(object.clone());
        }
        Ok((items, next))
    }

    fn check_namespace(&self, rt: &ResourceType, namespace: Option<&str>) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = namespace.unwrap_or("default");
        match self.objects.get(&(
            String::new(),
            "namespaces".into(),
            String::new(),
            ns.to_string(),
        )) {
            None => Err(ApiError::not_found("namespaces", ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
                details: None,
            }),
            Some(_) => Ok(()),
        }
    }

    fn validate(&self, rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
        let name = text(object, "/metadata/name").unwrap_or("");
        if let Some(schema) = &rt.schema {
            let errors = flink_api::crd::check_against_schema(object, schema);
            if !errors.is_empty() {
                return Err(ApiError::invalid(
                    &rt.kind,
                    name,
                    errors.into_iter().map(|e| (e.path, e.message)).collect(),
                ));
            }
        }
        if rt.group == "apiextensions.k8s.io"
            && let Err(e) = resources::from_crd(object)
        {
            return Err(ApiError::invalid(&rt.kind, name, vec![("spec".into(), e)]));
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, &object, None)?;
        let name = match text(&object, "/metadata/name") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match text(&object, "/metadata/generateName") {
                Some(prefix) => format!("{prefix}{}", suffix(self.next_id())),
                None => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        vec![(
                            "metadata.name".into(),
                            "name or generateName is required".into(),
                        )],
                    ));
                }
            },
        };
        if rt.namespaced {
            let ns = namespace.unwrap_or("default");
            if let Some(body_ns) = text(&object, "/metadata/namespace")
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        self.check_namespace(rt, namespace)?;
        let key = Self::key(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.qualified(), &name));
        }
        let id = self.next_id();
        let now = (self.clock)();
        {
            let m = meta(&mut object);
            m.insert("name".into(), Value::String(name.clone()));
            if rt.namespaced {
                m.insert("namespace".into(), Value::String(key.2.clone()));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), Value::String(uid(id)));
            m.insert("creationTimestamp".into(), Value::String(now));
            m.insert("generation".into(), json!(1));
            m.remove("deletionTimestamp");
            m.remove("resourceVersion");
        }
        object["apiVersion"] = Value::String(rt.api_version());
        object["kind"] = Value::String(rt.kind.clone());
        if rt.plural == "namespaces" && rt.group.is_empty() {
            object["status"] = json!({"phase": "Active"});
        }
        if rt.group == "apiextensions.k8s.io" {
            object["status"] = crd_status(&object);
        }
        self.validate(rt, &object)?;
        if dry_run {
            return Ok(object);
        }
        let created = self.commit(EventKind::Added, key, object);
        self.after_write(rt, &created);
        // An object created with owners that are all gone (a native JobManager's TaskManager
        // pod created while its Deployment is being deleted) is collected, as the real garbage
        // collector does a moment later: the create succeeds and the object goes.
        let owners = owner_uids(&created);
        if !owners.is_empty() && owners.iter().all(|u| !self.uids.contains_key(u)) {
            self.collect_garbage();
        }
        Ok(created)
    }

    /// A body must be an object of the addressed kind and, when given, carry the URL's name.
    pub(crate) fn check_body(
        &self,
        rt: &ResourceType,
        object: &Value,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request("the body is not a JSON object"));
        }
        self.check_kind(rt, object)?;
        if let (Some(name), Some(body_name)) = (name, text(object, "/metadata/name"))
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    fn check_kind(&self, rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the object's kind {kind:?} does not match the request's {:?}",
                rt.kind
            )));
        }
        Ok(())
    }

    /// PUT: the whole object (or its status). A stale `resourceVersion` is a 409.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        subresource: Subresource,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, &object, Some(name))?;
        let current = self.get(rt, namespace, name)?;
        match text(&object, "/metadata/resourceVersion") {
            Some(rv) if Some(rv) != text(&current, "/metadata/resourceVersion") => {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            None if rt.custom => {
                return Err(ApiError::invalid(
                    &rt.kind,
                    name,
                    vec![(
                        "metadata.resourceVersion".into(),
                        "must be specified for an update".into(),
                    )],
                ));
            }
            _ => {}
        }
        self.write(rt, namespace, name, current, object, subresource, dry_run)
    }

    /// PATCH with a merge, JSON or strategic patch. A `resourceVersion` in the patch is a
    /// precondition, as on the real server.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        subresource: Subresource,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        let patched = patch::apply(&current, patch_type, body, rt.custom)?;
        if text(&patched, "/metadata/resourceVersion")
            != text(&current, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        self.write(rt, namespace, name, current, patched, subresource, dry_run)
    }

    /// Applies a write to `current`, keeping what the addressed part may not change.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        current: Value,
        incoming: Value,
        subresource: Subresource,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut next = match subresource {
            Subresource::Status => {
                let mut next = current.clone();
                match incoming.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(map) = next.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                next
            }
            Subresource::Main => {
                let mut next = incoming;
                if rt.status_subresource {
                    match current.get("status") {
                        Some(status) => next["status"] = status.clone(),
                        None => {
                            if let Some(map) = next.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                next
            }
        };
        {
            let old_meta = current.get("metadata").cloned().unwrap_or_default();
            let m = meta(&mut next);
            for key in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            m.insert(
                "resourceVersion".into(),
                old_meta
                    .get("resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            if subresource == Subresource::Status {
                for key in [
                    "labels",
                    "annotations",
                    "finalizers",
                    "ownerReferences",
                    "managedFields",
                ] {
                    match old_meta.get(key) {
                        Some(v) => m.insert(key.into(), v.clone()),
                        None => m.remove(key),
                    };
                }
            }
        }
        next["apiVersion"] = Value::String(rt.api_version());
        next["kind"] = Value::String(rt.kind.clone());
        if spec_part(&next) != spec_part(&current) {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta(&mut next).insert("generation".into(), json!(generation));
        }
        if rt.group == "apiextensions.k8s.io" && subresource == Subresource::Main {
            next["status"] = crd_status(&next);
        }
        if next == current {
            return Ok(current);
        }
        self.validate(rt, &next)?;
        if dry_run {
            return Ok(next);
        }
        let key = Self::key(rt, namespace, name);
        // A pod in graceful termination stays until its kubelet's final delete, whatever is
        // written to it meanwhile (a label, its status).
        let terminating_gracefully = is_pod(rt)
            && next
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .is_some_and(|g| g > 0);
        let finished = next.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&next).is_empty()
            && !terminating_gracefully;
        let written = self.commit(
            if finished {
                EventKind::Deleted
            } else {
                EventKind::Modified
            },
            key,
            next,
        );
        self.after_write(rt, &written);
        if finished {
            self.after_removal(rt, &written);
            self.collect_garbage();
        }
        Ok(written)
    }

    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name)?;
        if let Some(uid) = &options.precondition_uid
            && Some(uid.as_str()) != text(&current, "/metadata/uid")
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    text(&current, "/metadata/uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &options.precondition_resource_version
            && Some(rv.as_str()) != text(&current, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if options.dry_run {
            return Ok(current);
        }
        let key = Self::key(rt, namespace, name);
        // The kubelet's final delete of a pod it stopped (grace 0) removes it.
        if options.grace_period_seconds == Some(0)
            && current.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&current).is_empty()
            && is_pod(rt)
        {
            let removed = self.commit(EventKind::Deleted, key, current);
            self.collect_garbage();
            return Ok(removed);
        }
        let result = self.delete_object(
            rt,
            key,
            current,
            options.propagation,
            options.grace_period_seconds,
        );
        self.collect_garbage();
        Ok(result)
    }

    fn delete_object(
        &mut self,
        rt: &ResourceType,
        key: Key,
        current: Value,
        propagation: Propagation,
        grace_period_seconds: Option<i64>,
    ) -> Value {
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return current;
        }
        let uid = text(&current, "/metadata/uid").unwrap_or("").to_string();
        if propagation == Propagation::Orphan {
            self.orphan_dependents(&uid);
        }
        let mut next = current;
        // A pod bound to a node is deleted gracefully, as on a real cluster: it is marked, and
        // its kubelet stops its containers and then removes it (grace 0). An unbound pod goes
        // at once.
        let grace = grace_period_seconds.unwrap_or_else(|| {
            next.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        let bound = next
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if is_pod(rt) && bound && grace > 0 {
            let now = (self.clock)();
            let m = meta(&mut next);
            m.insert("deletionTimestamp".into(), Value::String(now));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            return self.commit(EventKind::Modified, key, next);
        }
        let mut pending = finalizers(&next);
        if propagation == Propagation::Foreground && !pending.iter().any(|f| f == FOREGROUND) {
            pending.push(FOREGROUND.into());
            meta(&mut next).insert("finalizers".into(), json!(pending));
        }
        let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
        if pending.is_empty() && !is_namespace {
            let removed = self.commit(EventKind::Deleted, key, next);
            self.after_removal(rt, &removed);
            return removed;
        }
        let now = (self.clock)();
        let m = meta(&mut next);
        m.insert("deletionTimestamp".into(), Value::String(now));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if is_namespace {
            next["status"] = json!({"phase": "Terminating"});
        }
        self.commit(EventKind::Modified, key, next)
    }

    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        options: &ListOptions,
        delete: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let (items, _) = self.list(
            rt,
            &ListOptions {
                limit: None,
                continue_token: None,
                ..options.clone()
            },
        )?;
        let mut deleted = Vec::new();
        for item in items {
            let name = text(&item, "/metadata/name").unwrap_or("").to_string();
            let ns = text(&item, "/metadata/namespace").map(str::to_string);
            deleted.push(self.delete(rt, ns.as_deref(), &name, delete)?);
        }
        Ok(deleted)
    }

    fn orphan_dependents(&mut self, owner_uid: &str) {
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| owner_uids(o).iter().any(|u| u == owner_uid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dependents {
            let Some(mut object) = self.objects.get(&key).cloned() else {
                continue;
            };
            if let Some(refs) = object
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            self.commit(EventKind::Modified, key, object);
        }
    }

    /// The API server's own reactions to a write: CRDs register their resources.
    fn after_write(&mut self, rt: &ResourceType, object: &Value) {
        if rt.group == "apiextensions.k8s.io"
            && let Ok(types) = resources::from_crd(object)
        {
            for t in types {
                self.types.retain(|e| {
                    !(e.group == t.group && e.plural == t.plural && e.version == t.version)
                });
                self.types.push(t);
            }
        }
    }

    /// What removing an object implies: a CRD takes its resources and their objects with it.
    fn after_removal(&mut self, rt: &ResourceType, object: &Value) {
        if rt.group == "apiextensions.k8s.io"
            && let Ok(types) = resources::from_crd(object)
        {
            let (group, plural) = (types[0].group.clone(), types[0].plural.clone());
            let keys: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.0 == group && k.1 == plural)
                .cloned()
                .collect();
            for key in keys {
                if let Some(o) = self.objects.get(&key).cloned() {
                    self.commit(EventKind::Deleted, key, o);
                }
            }
            self.types
                .retain(|t| !(t.group == group && t.plural == plural));
        }
    }

    fn type_of(&self, key: &Key) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == key.0 && t.plural == key.1)
            .cloned()
    }

    /// Garbage collection and namespace cleanup, run after every delete until nothing changes:
    /// dependents whose owners are all gone are deleted (in the background); owners deleted in
    /// the foreground lose their `foregroundDeletion` finalizer once their dependents are gone;
    /// terminating namespaces are emptied and then removed.
    pub fn collect_garbage(&mut self) {
        for _ in 0..1000 {
            let mut changed = false;
            let keys: Vec<Key> = self.objects.keys().cloned().collect();
            for key in keys {
                let Some(object) = self.objects.get(&key).cloned() else {
                    continue;
                };
                let Some(rt) = self.type_of(&key) else {
                    continue;
                };
                let owners = owner_uids(&object);
                if !owners.is_empty()
                    && owners.iter().all(|u| !self.uids.contains_key(u))
                    && object.pointer("/metadata/deletionTimestamp").is_none()
                {
                    self.delete_object(&rt, key.clone(), object, Propagation::Background, None);
                    changed = true;
                    continue;
                }
                if object.pointer("/metadata/deletionTimestamp").is_none() {
                    continue;
                }
                let uid = text(&object, "/metadata/uid").unwrap_or("").to_string();
                if finalizers(&object).iter().any(|f| f == FOREGROUND) {
                    let dependents: Vec<Key> = self
                        .objects
                        .iter()
                        .filter(|(_, o)| owner_uids(o).contains(&uid))
                        .map(|(k, _)| k.clone())
                        .collect();
                    if dependents.is_empty() {
                        let mut next = object.clone();
                        let remaining: Vec<String> = finalizers(&object)
                            .into_iter()
                            .filter(|f| f != FOREGROUND)
                            .collect();
                        meta(&mut next).insert("finalizers".into(), json!(remaining));
                        let done = remaining.is_empty();
                        let written = self.commit(
                            if done {
                                EventKind::Deleted
                            } else {
                                EventKind::Modified
                            },
                            key.clone(),
                            next,
                        );
                        if done {
                            self.after_removal(&rt, &written);
                        }
                        changed = true;
                    } else {
                        for dependent in dependents {
                            if let (Some(o), Some(drt)) = (
                                self.objects.get(&dependent).cloned(),
                                self.type_of(&dependent),
                            ) && o.pointer("/metadata/deletionTimestamp").is_none()
                            {
                                self.delete_object(
                                    &drt,
                                    dependent,
                                    o,
                                    Propagation::Background,
                                    None,
                                );
                                changed = true;
                            }
                        }
                    }
                }
                if rt.group.is_empty() && rt.plural == "namespaces" {
                    let name = key.3.clone();
                    let contents: Vec<Key> = self
                        .objects
                        .keys()
                        .filter(|k| k.2 == name)
                        .cloned()
                        .collect();
                    if contents.is_empty() {
                        let removed = self.commit(EventKind::Deleted, key.clone(), object);
                        self.after_removal(&rt, &removed);
                        changed = true;
                    } else {
                        for content in contents {
                            if let (Some(o), Some(crt)) =
                                (self.objects.get(&content).cloned(), self.type_of(&content))
                                && o.pointer("/metadata/deletionTimestamp").is_none()
                            {
                                self.delete_object(&crt, content, o, Propagation::Background, None);
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// `autoscaling/v1` Scale of an object with a scale subresource.
    pub fn scale(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let paths = rt
            .scale
            .as_ref()
            .ok_or_else(|| ApiError::not_found_path(&format!("{}/scale", rt.plural)))?;
        let object = self.get(rt, namespace, name)?;
        let at = |path: &str| object.pointer(&json_path_pointer(path)).cloned();
        let selector = match &paths.label_selector {
            Some(path) => at(path).and_then(|v| v.as_str().map(str::to_string)),
            None => object
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                }),
        };
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": name,
                "namespace": object.pointer("/metadata/namespace"),
                "uid": object.pointer("/metadata/uid"),
                "resourceVersion": object.pointer("/metadata/resourceVersion"),
                "creationTimestamp": object.pointer("/metadata/creationTimestamp"),
            },
            "spec": {"replicas": at(&paths.spec_replicas).unwrap_or(json!(0))},
            "status": {"replicas": at(&paths.status_replicas).unwrap_or(json!(0)), "selector": selector.unwrap_or_default()},
        }))
    }

    /// Sets replicas through the scale subresource.
    pub fn set_scale(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let paths = rt
            .scale
            .clone()
            .ok_or_else(|| ApiError::not_found_path(&format!("{}/scale", rt.plural)))?;
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    name,
                    vec![("spec.replicas".into(), "must be an integer".into())],
                )
            })?;
        let current = self.get(rt, namespace, name)?;
        if let Some(rv) = text(scale, "/metadata/resourceVersion")
            && Some(rv) != text(&current, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut next = current.clone();
        set_at(
            &mut next,
            &json_path_pointer(&paths.spec_replicas),
            json!(replicas),
        );
        self.write(
            rt,
            namespace,
            name,
            current,
            next,
            Subresource::Main,
            dry_run,
        )?;
        self.scale(rt, namespace, name)
    }
}

/// `.spec.taskManager.replicas` → `/spec/taskManager/replicas`.
pub fn json_path_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, part| format!("{acc}/{part}"))
}

fn set_at(target: &mut Value, pointer: &str, value: Value) {
    let mut current = target;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let map = current.as_object_mut().expect("made an object above");
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return;
        }
        current = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

/// The status a CRD gets once "established" (the stand-in serves it at once).
fn crd_status(crd: &Value) -> Value {
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": crd.pointer("/metadata/creationTimestamp")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": crd.pointer("/metadata/creationTimestamp")},
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

fn uid(id: u64) -> String {
    format!("5a4db0c5-0000-4000-8000-{id:012x}")
}

/// Five lowercase characters for `generateName`, derived from a counter.
fn suffix(id: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn encode_continue(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}
