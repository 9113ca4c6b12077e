//! Headless Chromium for browser tests: `chromedriver` on a free port, a fresh
//! profile, and a fantoccini client with helpers for the checks the tests repeat
//! (waits with timeouts, screenshots, horizontal scrolling, tap targets, requests
//! to other hosts). chromedriver and Chromium are killed when the `Browser` is
//! dropped, and get SIGKILL with the test process (PR_SET_PDEATHSIG) if it dies.
//! They may run in another network namespace (a sandbox's own network): the test
//! then reaches chromedriver through a forwarder.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a wait for the page may take before the test fails. Generous: the
/// suite shares 2 cores between containers, browsers and the compiler.
pub const WAIT: Duration = Duration::from_secs(20);

/// A screen to test at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub width: u32,
    pub height: u32,
    /// A phone: touch screen, coarse pointer, 2× pixels.
    pub mobile: bool,
}

pub const PHONE: Screen = Screen {
    width: 390,
    height: 844,
    mobile: true,
};
pub const DESKTOP: Screen = Screen {
    width: 1280,
    height: 900,
    mobile: false,
};

impl Screen {
    /// `390x844`, as used in screenshot names.
    pub fn label(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// Options beyond the screen.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra Chromium switches.
    pub args: Vec<String>,
    /// Runs chromedriver and Chromium in the network namespace of this (host) pid,
    /// e.g. a `Sandbox`'s `pid`; their files and processes stay the host's.
    pub netns_of: Option<u32>,
}

pub struct Browser {
    pub client: Client,
    pub screen: Screen,
    /// The path unitdeck is under in the pages' URLs (a reverse proxy's prefix, e.g.
    /// `/proxy/8035`): `wait_for_path` adds it.
    pub prefix: String,
    driver: Child,
    watchdog: Child,
    profile: PathBuf,
    /// chromedriver's way in from the host's network, when it runs in another one.
    /// Dropped after chromedriver is killed (`Drop` runs before the fields').
    _forwarder: Option<Forwarder>,
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium showing `screen`.
    pub async fn start(screen: Screen) -> Self {
        Self::start_with(screen, Options::default()).await
    }

    pub async fn start_with(screen: Screen, options: Options) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "unitdeck-chromium-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a profile dir");

        let netns = options.netns_of.map(open_netns);
        let port = match &netns {
            Some(ns) => in_netns(ns, free_port),
            None => free_port(),
        };
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that Drop ends Chromium (its child) with it.
        cmd.process_group(0);
        let netns_fd = netns.as_ref().map(|f| f.as_raw_fd());
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Chromium, started by chromedriver, inherits the namespace.
                if let Some(fd) = netns_fd
                    && libc::setns(fd, libc::CLONE_NEWNET) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let driver = cmd
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        // Chromium outlives a killed chromedriver: this watchdog ends the whole group
        // if the test process dies without dropping the Browser. It leaves quietly once
        // chromedriver is gone: its pid is soon reused (pid_max is 32768 here), and a
        // `kill -- -PID` then hit whatever new process group leader got it — seen killing
        // a service's main process in another test's container.
        let watchdog = Command::new("/bin/sh")
            .args([
                "-c",
                "while kill -0 \"$1\" 2>/dev/null; do kill -0 \"$2\" 2>/dev/null || exit 0; sleep 1; done; \
                 kill -KILL -- \"-$2\" 2>/dev/null",
                "watchdog",
                &std::process::id().to_string(),
                &driver.id().to_string(),
            ])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");

        let forwarder = netns.map(|ns| Forwarder::start(ns, port));
        let url = match &forwarder {
            Some(f) => format!("http://{}", f.addr),
            None => format!("http://127.0.0.1:{port}"),
        };
        wait_for_driver(&url).await;

        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", screen.width, screen.height),
        ];
        args.extend(options.args);
        let mut chrome = json!({ "binary": "/usr/bin/chromium", "args": args });
        if screen.mobile {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": screen.width,
                    "height": screen.height,
                    "pixelRatio": 2.0,
                    "touch": true,
                    "mobile": true,
                },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                    (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36",
            });
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            // A confirm() dialog stays open until the test accepts or dismisses it.
            "unhandledPromptBehavior": "ignore",
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a Chromium session");
        let browser = Self {
            client,
            screen,
            prefix: String::new(),
            driver,
            watchdog,
            profile,
            _forwarder: forwarder,
        };
        if !screen.mobile {
            // --window-size is the outer size; make the viewport exact.
            browser.set_viewport(screen.width, screen.height).await;
        }
        // Every Content-Security-Policy violation of every page this tab loads, kept in
        // sessionStorage across navigations (read with `csp_violations`). Injected through
        // DevTools, so the policy does not apply to this script itself.
        browser
            .cdp(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": "document.addEventListener('securitypolicyviolation', e => { \
                    try { const k = 'unitdeck-csp', l = JSON.parse(sessionStorage.getItem(k) || '[]'); \
                    l.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' on ' + location.pathname); \
                    sessionStorage.setItem(k, JSON.stringify(l)); } catch (_) {} });" }),
            )
            .await;
        browser
    }

    /// The Content-Security-Policy violations reported so far in this tab (each as
    /// "directive blocked-uri on /path").
    pub async fn csp_violations(&self) -> Vec<String> {
        let v = self
            .js(
                "return JSON.parse(sessionStorage.getItem('unitdeck-csp') || '[]')",
                vec![],
            )
            .await;
        strings(&v)
    }

    /// Makes the viewport (window.innerWidth × innerHeight) `width` × `height` CSS px.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": false,
            }),
        )
        .await;
        let inner = self
            .js("return [window.innerWidth, window.innerHeight]", vec![])
            .await;
        assert_eq!(inner, json!([width, height]), "viewport size");
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(CdpCommand {
                cmd: cmd.to_string(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Emulates `prefers-color-scheme: dark` (or back to the default with `false`).
    pub async fn dark_mode(&self, on: bool) {
        let value = if on { "dark" } else { "" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        )
        .await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns something truthy; panics with `what` after `timeout`.
    pub async fn wait_js(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.execute(script, vec![]).await {
                Ok(v) if truthy(&v) => return v,
                Ok(_) => {}
                // A navigation in progress, or an open dialog: try again.
                Err(e) if Instant::now() >= deadline => {
                    panic!("timed out waiting for: {what} (last error: {e})")
                }
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for: {what}\n(at {})",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Like `wait_js`, but says whether it happened instead of panicking.
    pub async fn try_wait_js(&self, timeout: Duration, script: &str) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.client.execute(script, vec![]).await
                && truthy(&v)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an element matching `css` to be present and displayed.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, WAIT).await
    }

    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && el.is_displayed().await.unwrap_or(false)
            {
                return el;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for `{css}` (at {})",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` once it is displayed; tries again when a
    /// live update replaced it between finding and clicking, or, scrolled to the middle
    /// of the screen as a person would, when something fixed (the phone's tab bar, a
    /// toast) covered it.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.wait_for(css).await;
            match el.click().await {
                Ok(()) => return,
                Err(e) if is_stale(&e) && Instant::now() < deadline => {}
                Err(e)
                    if e.to_string().contains("click intercepted") && Instant::now() < deadline =>
                {
                    let _ = self
                        .client
                        .execute(
                            "arguments[0].scrollIntoView({ block: 'center' })",
                            vec![serde_json::to_value(&el).unwrap()],
                        )
                        .await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click `{css}`: {e}"),
            }
        }
    }

    /// The element matching `css` (which must be there now).
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` not found: {e}"))
    }

    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("<no url: {e}>"))
    }

    /// Waits for the location's path (and query) to be `path` (under `prefix`).
    pub async fn wait_for_path(&self, path: &str) {
        let path = format!("{}{path}", self.prefix);
        let script = format!(
            "return document.readyState !== 'loading' && location.pathname + location.search === {}",
            json!(path)
        );
        self.wait_js(&format!("the page {path}"), WAIT, &script)
            .await;
    }

    /// Waits for a `confirm()`/`alert()` dialog, checks its text holds `contains`,
    /// and accepts it.
    pub async fn accept_dialog(&self, contains: &str) {
        let deadline = Instant::now() + WAIT;
        let text = loop {
            if let Ok(text) = self.client.get_alert_text().await {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "no dialog appeared (expected one saying {contains:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(text.contains(contains), "dialog says {text:?}");
        self.client.accept_alert().await.expect("accept the dialog");
    }

    /// axe-core's serious and critical violations on the page as it is now, each as
    /// "rule (impact): help — first elements", and how many lesser ones it found. axe is
    /// vendored (tests/vendor/axe.min.js, from the npm registry) and injected through
    /// WebDriver, so the page's Content-Security-Policy does not apply to it.
    pub async fn axe(&self) -> (Vec<String>, Vec<String>) {
        const AXE: &str = include_str!("../vendor/axe.min.js");
        let loaded = self.js("return !!window.axe", vec![]).await;
        if loaded != json!(true) {
            self.js(&format!("{AXE}\nreturn true"), vec![]).await;
        }
        let found = self
            .js(
                "return axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => \
                   [v.impact, v.id + ' (' + v.impact + '): ' + v.help + ' — ' + \
                     v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; ')]))",
                vec![],
            )
            .await;
        let mut serious = Vec::new();
        let mut lesser = Vec::new();
        for v in found.as_array().expect("axe's violations") {
            let text = v[1].as_str().unwrap_or_default().to_string();
            match v[0].as_str() {
                Some("serious" | "critical") => serious.push(text),
                _ => lesser.push(text),
            }
        }
        (serious, lesser)
    }

    /// Writes a screenshot of the whole page to `target/screenshots/<name>-<WxH>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        let path = dir.join(format!("{name}-{}.png", self.screen.label()));
        let png = self.full_page_png().await;
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    async fn full_page_png(&self) -> Vec<u8> {
        use base64::Engine;
        let size = self
            .js(
                "const e = document.documentElement; \
                 return [Math.max(e.scrollWidth, window.innerWidth), \
                         Math.min(Math.max(e.scrollHeight, window.innerHeight), 4000)]",
                vec![],
            )
            .await;
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 },
                }),
            )
            .await;
        match shot["data"].as_str() {
            Some(data) => base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64 PNG"),
            None => self.client.screenshot().await.expect("a screenshot"),
        }
    }

    /// True when the page does not scroll sideways.
    pub async fn no_horizontal_scroll(&self) -> bool {
        self.js(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
            == json!(true)
    }

    /// Panics with the widest elements when the page scrolls sideways.
    pub async fn assert_no_horizontal_scroll(&self, page: &str) {
        if self.no_horizontal_scroll().await {
            return;
        }
        let culprits = self
            .js(
                "const w = window.innerWidth; \
                 return [document.documentElement.scrollWidth, w, \
                   [...document.querySelectorAll('body *')] \
                     .filter(e => e.getBoundingClientRect().right > w + 0.5) \
                     .slice(0, 12) \
                     .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + \
                          (e.className && e.className.baseVal === undefined ? '.' + e.className.trim().replace(/\\s+/g, '.') : '') + \
                          ' right=' + Math.round(e.getBoundingClientRect().right))]",
                vec![],
            )
            .await;
        panic!(
            "{page} scrolls sideways at {}: {culprits}",
            self.screen.label()
        );
    }

    /// Visible buttons, button-like links, nav links and form controls lower than 44
    /// CSS px (a checkbox or radio counts by its `label.check`).
    pub async fn small_tap_targets(&self) -> Vec<String> {
        let v = self
            .js(
                "const seen = e => e.getClientRects().length > 0 && \
                   getComputedStyle(e).visibility !== 'hidden' && !e.closest('.sr-only,[hidden]'); \
                 return [...document.querySelectorAll('button, a.btn, nav a, .chip, label.check, select, input:not([type=hidden]):not([type=checkbox]):not([type=radio])')] \
                   .filter(seen) \
                   .filter(e => e.getBoundingClientRect().height < 44) \
                   .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className.trim().replace(/\\s+/g, '.') : '') + \
                        ' \"' + (e.textContent || e.name || '').trim().slice(0, 30) + '\" ' + \
                        Math.round(e.getBoundingClientRect().height) + 'px')",
                vec![],
            )
            .await;
        strings(&v)
    }

    /// Text set smaller than 12 px (unreadable on a phone without zooming).
    pub async fn tiny_text(&self) -> Vec<String> {
        let v = self
            .js(
                "return [...document.querySelectorAll('body *')] \
                   .filter(e => e.getClientRects().length > 0 && !e.closest('.sr-only,[hidden],svg') && \
                     [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) \
                   .filter(e => parseFloat(getComputedStyle(e).fontSize) < 12) \
                   .slice(0, 10) \
                   .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + getComputedStyle(e).fontSize)",
                vec![],
            )
            .await;
        strings(&v)
    }

    /// Resources the page loads from anywhere but its own origin, and links or
    /// form targets to other hosts.
    pub async fn foreign_requests(&self) -> Vec<String> {
        let v = self
            .js(
                "const o = location.origin, h = location.hostname, out = []; \
                 for (const e of performance.getEntriesByType('resource')) \
                   if (!e.name.startsWith(o + '/')) out.push('loaded ' + e.name); \
                 const attrs = ['src', 'href', 'action', 'formaction', 'hx-get', 'hx-post', 'data-post', 'sse-connect', 'poster', 'srcset']; \
                 for (const el of document.querySelectorAll('*')) for (const a of attrs) { \
                   const v = el.getAttribute(a); if (v === null || v === '' || v.startsWith('#')) continue; \
                   let u; try { u = new URL(v, location.href); } catch { out.push('bad ' + a + '=' + v); continue; } \
                   if (u.protocol === 'javascript:') { out.push(el.tagName + ' ' + a + '=' + v); continue; } \
                   const plainLink = el.tagName === 'A' && a === 'href'; \
                   if (plainLink ? u.hostname !== h : u.origin !== o) out.push(el.tagName + ' ' + a + '=' + v); } \
                 return out",
                vec![],
            )
            .await;
        strings(&v)
    }

    /// Visible text whose colour has a WCAG contrast under 4.5:1 (3:1 for large
    /// text) against the backgrounds behind it, composited up to the page.
    pub async fn low_contrast(&self) -> Vec<String> {
        let v = self
            .js(
                r#"
const parse = c => { const m = c.match(/[\d.]+/g) || []; const [r, g, b, a] = m.map(Number);
  return c.startsWith('color(srgb') ? [r * 255, g * 255, b * 255, a ?? 1] : [r, g, b, a ?? 1]; };
const over = (top, bot) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + bot[i] * (1 - a)).concat(1); };
const bgOf = el => { const layers = [];
  for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c[3] > 0) layers.push(c); if (c[3] >= 1) break; }
  let bg = [255, 255, 255, 1]; if (!layers.length || layers[layers.length - 1][3] < 1) bg = parse(getComputedStyle(document.documentElement).backgroundColor || 'rgb(255,255,255)');
  if (bg[3] < 1) bg = matchMedia('(prefers-color-scheme: dark)').matches ? [18, 18, 18, 1] : [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg); return bg; };
const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const out = [];
for (const e of document.querySelectorAll('body *')) {
  if (!e.getClientRects().length || e.closest('.sr-only,[hidden],svg,option,datalist')) continue;
  if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const s = getComputedStyle(e); if (s.visibility === 'hidden' || Number(s.opacity) === 0) continue;
  if (e.matches(':disabled, :disabled *, .btn:disabled *')) continue;
  const bg = bgOf(e), fg = over(parse(s.color), bg), r = ratio(fg, bg);
  const size = parseFloat(s.fontSize), large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
  if (r < (large ? 3 : 4.5)) out.push(e.tagName.toLowerCase() + '.' + String(e.className).trim().replace(/\s+/g, '.') +
    ' "' + e.textContent.trim().slice(0, 24) + '" ' + r.toFixed(2) + ':1 ' + s.color + ' on ' + 'rgb(' + bg.slice(0, 3).map(Math.round) + ')');
}
return out.slice(0, 15);
"#,
                vec![],
            )
            .await;
        strings(&v)
    }

    /// `.state` badges without text (colour alone would have to say the state).
    pub async fn state_badges_without_text(&self) -> Vec<String> {
        let v = self
            .js(
                "return [...document.querySelectorAll('.state, .health')] \
                   .filter(e => e.getClientRects().length > 0 && !e.textContent.trim()) \
                   .map(e => e.outerHTML.slice(0, 120))",
                vec![],
            )
            .await;
        strings(&v)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The watchdog first, so it never acts on a reaped (reusable) chromedriver pid.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        // chromedriver and the Chromium it started share a process group.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The network namespace of `pid`, held open.
fn open_netns(pid: u32) -> std::fs::File {
    std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("the network namespace of pid {pid}: {e}"))
}

/// Joins `ns` (the calling thread only: namespaces are per thread).
fn enter_netns(ns: &std::fs::File) {
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// `f` run on a thread of its own inside `ns`.
fn in_netns<T: Send>(ns: &std::fs::File, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns);
            f()
        })
        .join()
        .unwrap()
    })
}

/// A forwarded connection: its two sockets (to shut them down) and two copying threads.
type Conn = ([TcpStream; 2], [JoinHandle<()>; 2]);

/// Forwards connections from 127.0.0.1 in the host's network namespace to
/// 127.0.0.1:`port` in another one. Sockets stay in the namespace they were made in:
/// the listener is the host's; the accepting thread joins the other namespace, so the
/// connections it makes are there.
struct Forwarder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Conn>>>,
    accept: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(ns: std::fs::File, port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a forwarder port");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::<Conn>::new()));
        let accept = std::thread::spawn({
            let (stop, conns) = (stop.clone(), conns.clone());
            move || {
                enter_netns(&ns);
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    // Not up yet: the client sees the connection closed, and tries again.
                    let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    let copy = |mut from: TcpStream, mut to: TcpStream| {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            // Either side done: the whole connection is (HTTP never half-closes).
                            let _ = from.shutdown(Shutdown::Both);
                            let _ = to.shutdown(Shutdown::Both);
                        })
                    };
                    let (Ok(client2), Ok(server2), Ok(client3), Ok(server3)) = (
                        client.try_clone(),
                        server.try_clone(),
                        client.try_clone(),
                        server.try_clone(),
                    ) else {
                        continue;
                    };
                    let threads = [copy(client, server), copy(server2, client2)];
                    let mut conns = conns.lock().unwrap();
                    conns.retain(|(_, t)| !t.iter().all(JoinHandle::is_finished));
                    conns.push(([client3, server3], threads));
                }
            }
        });
        Self {
            addr,
            stop,
            conns,
            accept: Some(accept),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for (streams, threads) in self.conns.lock().unwrap().drain(..) {
            for s in &streams {
                let _ = s.shutdown(Shutdown::Both);
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

pub fn screenshot_dir() -> PathBuf {
    super::project_root().join("target/screenshots")
}

async fn wait_for_driver(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(res) = client.get(format!("{url}/status")).send().await
            && let Ok(v) = res.json::<Value>().await
            && v["value"]["ready"] == json!(true)
        {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    matches!(
        e,
        fantoccini::error::CmdError::Standard(w)
            if w.error == fantoccini::error::ErrorStatus::StaleElementReference
    )
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// chromedriver's `goog/cdp/execute`: a DevTools command for the current page.
#[derive(Debug)]
struct CdpCommand {
    cmd: String,
    params: Value,
}

impl WebDriverCompatibleCommand for CdpCommand {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}
