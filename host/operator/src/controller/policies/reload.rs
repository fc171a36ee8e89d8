//! Loading the tenants' bindings and plugins: from the policies ConfigMap or a plugin
//! directory, on every change (debounced), activated binding by binding, and reported on the
//! ConfigMap.

use super::*;

impl Policies {
    /// Writes the activation report to the ConfigMap and an event per binding that changed.
    pub(super) async fn report(
        &self,
        api: &Api<ConfigMap>,
        recorder: &Recorder,
        config_map: &ConfigMap,
        previous: &ActivePolicies,
        next: &ActivePolicies,
    ) {
        let report = json!({
            "configErrors": next.config_errors,
            "bindings": next.reports,
        });
        let mut notes = Vec::new();
        if !next.config_errors.is_empty() && next.config_errors != previous.config_errors {
            notes.push(Note::warning(
                Reason::PolicyConfigInvalid,
                format!(
                    "{} is invalid, the previous bindings stay in effect: {}",
                    CONFIG_KEY,
                    next.config_errors.join("; ")
                ),
            ));
        }
        for report in &next.reports {
            if previous.reports.contains(report) {
                continue;
            }
            let what = format!(
                "tenant {} {} plugin {}",
                report.tenant, report.extension_point, report.plugin
            );
            notes.push(match &report.error {
                None => Note::normal(
                    Reason::PolicyActivated,
                    format!(
                        "{what} {} is active",
                        report.active_digest.as_ref().map_or("", |d| d.0.as_str())
                    ),
                ),
                Some(error) => Note::warning(Reason::PolicyRejected, format!("{what}: {error}")),
            });
        }
        crate::controller::act::report_on_config_map(
            api,
            recorder,
            config_map,
            STATUS_ANNOTATION,
            &report.to_string(),
            &notes,
        )
        .await;
    }

    /// Reads the ConfigMap and activates what it says; `force` reloads even when its content
    /// did not change (a plugin file did).
    pub async fn reload(&self, client: &Client, recorder: &Recorder, force: bool) {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.settings.namespace);
        let config_map = match api.get_opt(&self.settings.config_map).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the policies ConfigMap; the bindings stay as they are");
                return;
            }
        };
        let content = config_map
            .as_ref()
            .map(|cm| serde_json::to_string(&(&cm.data, &cm.binary_data)).unwrap_or_default())
            .unwrap_or_default();
        {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            if !force && loaded.as_deref() == Some(content.as_str()) {
                return;
            }
            *loaded = Some(content);
        }
        let previous = self.active();
        let text = config_map
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|data| data.get(CONFIG_KEY).cloned())
            .unwrap_or_default();
        let next = match PolicyConfig::parse(&text) {
            Ok(config) => {
                activate(
                    &self.engine,
                    config,
                    &self.source(config_map.as_ref()),
                    &previous,
                    &self.settings.maxima,
                )
                .await
            }
            Err(errors) => ActivePolicies::keep_with_errors(&previous, errors),
        };
        let next = Arc::new(next);
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        // Compiled plugins no binding uses any more are forgotten (memory and disk cache).
        let in_use = next
            .bindings
            .values()
            .map(|b| b.plugin.digest.clone())
            .collect();
        let deleted = self.engine.retain(&in_use);
        if deleted > 0 {
            tracing::info!(deleted, "plugin compile cache: unused artifacts deleted");
        }
        if let Some(config_map) = &config_map {
            self.report(&api, recorder, config_map, &previous, &next)
                .await;
        }
    }

    /// Reloads whenever the ConfigMap or a plugin file changes, until `shutdown`.
    pub async fn watch(
        self: Arc<Self>,
        client: Client,
        recorder: Recorder,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let _file_watcher = self.settings.plugin_dir.as_ref().and_then(|dir| {
            use notify::Watcher;
            let tx = tx.clone();
            let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(true);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "cannot watch the plugin directory"))
            .ok()?;
            // The directory itself (not its files): a ConfigMap volume swaps a `..data` symlink.
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|e| tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the plugin directory"))
                .ok()?;
            Some(watcher)
        });
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.settings.namespace);
        let name = self.settings.config_map.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let events = watcher(api, config).for_each(|event| {
            let tx = tx.clone();
            let name = name.clone();
            async move {
                let relevant = match &event {
                    Ok(
                        watcher::Event::Apply(cm)
                        | watcher::Event::Delete(cm)
                        | watcher::Event::InitApply(cm),
                    ) => cm.name_any() == name,
                    Ok(watcher::Event::InitDone) => true,
                    _ => false,
                };
                if relevant {
                    let _ = tx.send(false);
                }
            }
        });
        let reloads = async {
            while let Some(first) = rx.recv().await {
                let mut force = first;
                tokio::time::sleep(DEBOUNCE).await;
                while let Ok(more) = rx.try_recv() {
                    force |= more;
                }
                self.reload(&client, &recorder, force).await;
            }
        };
        tokio::select! {
            _ = events => {}
            _ = reloads => {}
            _ = shutdown => {}
        }
    }
}
