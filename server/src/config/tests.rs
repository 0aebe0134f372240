//! The configuration's unit tests: defaults, the file, the environment and flags in order, and
//! every validation message. They never bind a socket.

use super::*;

#[test]
fn defaults_are_valid() {
    let c = Config::load(Cli::default()).unwrap();
    assert_eq!(c.http_bind.port(), 8080);
    assert_eq!(c.rtc_port, 7882);
    assert_eq!(c.max_message_size, 1024 * 1024);
    assert!(c.credentials.is_none());
}

#[test]
fn dev_mode_listens_on_this_machine_unless_opened_on_purpose() {
    let dev = Config::load(Cli::default()).unwrap();
    assert_eq!(dev.http_bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert!(!dev.insecure_dev);
    let wide = SocketAddr::from(([0, 0, 0, 0], 9090));
    let refused = Config::load(Cli {
        http_bind: Some(wide),
        ..Cli::default()
    })
    .unwrap_err();
    assert!(
        format!("{refused:#}").contains("--insecure-dev"),
        "{refused:#}"
    );
    let open = Config::load(Cli {
        http_bind: Some(wide),
        insecure_dev: true,
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(open.http_bind, wide);
    let open = Config::load(Cli {
        insecure_dev: true,
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(open.http_bind, SocketAddr::from(([0, 0, 0, 0], 8080)));
    let production = || Cli {
        api_key: Some("key".into()),
        api_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..Cli::default()
    };
    let c = Config::load(production()).unwrap();
    assert_eq!(c.http_bind, SocketAddr::from(([0, 0, 0, 0], 8080)));
    let both = Config::load(Cli {
        insecure_dev: true,
        ..production()
    })
    .unwrap_err();
    assert!(format!("{both:#}").contains("only in dev mode"), "{both:#}");
}

#[test]
fn https_listens_where_http_would_and_only_with_a_certificate_source() {
    assert!(Config::load(Cli::default()).unwrap().tls.is_none());
    let self_signed = |https_bind, insecure_dev| Cli {
        tls: crate::tls::settings::TlsArgs {
            tls_self_signed: true,
            https_bind,
            ..Default::default()
        },
        insecure_dev,
        ..Cli::default()
    };
    let tls = Config::load(self_signed(None, false)).unwrap().tls.unwrap();
    assert_eq!(tls.https_bind, SocketAddr::from(([127, 0, 0, 1], 8443)));
    let wide = SocketAddr::from(([0, 0, 0, 0], 443));
    let e = Config::load(self_signed(Some(wide), false)).unwrap_err();
    assert!(format!("{e:#}").contains("https_bind"), "{e:#}");
    let tls = Config::load(self_signed(Some(wide), true))
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.https_bind, wide);
    let production = Cli {
        api_key: Some("key".into()),
        api_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..self_signed(None, false)
    };
    let tls = Config::load(production).unwrap().tls.unwrap();
    assert_eq!(tls.https_bind, SocketAddr::from(([0, 0, 0, 0], 8443)));
}

#[test]
fn trusted_proxies_are_checked() {
    let c = Config::load(Cli {
        trusted_proxies: vec!["127.0.0.1".into(), "10.0.0.0/8".into()],
        ..Cli::default()
    })
    .unwrap();
    assert!(!c.trusted_proxies.is_empty());
    let e = Config::load(Cli {
        trusted_proxies: vec!["proxy.internal".into()],
        ..Cli::default()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("http.trusted_proxies"), "{e:#}");
}

#[test]
fn flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("sy-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, "[rtc]\nport = 9000\n[room]\nmax_participants = 7\n").unwrap();
    let cli = Cli {
        config: Some(path.clone()),
        rtc_port: Some(9100),
        ..Cli::default()
    };
    let c = Config::load(cli).unwrap();
    assert_eq!(c.rtc_port, 9100);
    assert_eq!(c.max_participants, 7);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rooms_are_opened_by_joins_unless_the_file_or_the_flag_says_not() {
    assert!(Config::load(Cli::default()).unwrap().auto_create_rooms);
    let dir = std::env::temp_dir().join(format!("sy-config-rooms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, "[room]\nauto_create_rooms = false\n").unwrap();
    let from_file = Cli {
        config: Some(path.clone()),
        ..Cli::default()
    };
    assert!(!Config::load(from_file).unwrap().auto_create_rooms);
    let from_flag = Cli {
        no_auto_create_rooms: true,
        ..Cli::default()
    };
    assert!(!Config::load(from_flag).unwrap().auto_create_rooms);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recording_settings_come_from_the_file_and_flags() {
    let c = Config::load(Cli::default()).unwrap();
    assert_eq!(c.recordings_dir, PathBuf::from("recordings"));
    assert!(c.recorder.is_none());
    let dir = std::env::temp_dir().join(format!("sy-config-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        "[recording]\ndir = \"/srv/rec\"\nrecorder = \"/opt/sy/switchyard-recorder\"\n",
    )
    .unwrap();
    let c = Config::load(Cli {
        config: Some(path.clone()),
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(c.recordings_dir, PathBuf::from("/srv/rec"));
    assert_eq!(
        c.recorder.as_deref(),
        Some(Path::new("/opt/sy/switchyard-recorder"))
    );
    let c = Config::load(Cli {
        config: Some(path),
        recordings_dir: Some("/tmp/elsewhere".into()),
        ..Cli::default()
    })
    .unwrap();
    assert_eq!(c.recordings_dir, PathBuf::from("/tmp/elsewhere"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_values_are_explained() {
    let err = Config::load(Cli {
        max_participants: Some(0),
        ..Cli::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_participants"));
    let err = Config::load(Cli {
        api_key: Some("k".into()),
        api_secret: Some("short".into()),
        ..Cli::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("32 characters"));
    let err = Config::load(Cli {
        api_key: Some("k".into()),
        ..Cli::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("api_secret"));
}

#[test]
fn per_address_limits_come_from_the_file_and_are_checked() {
    let c = Config::load(Cli::default()).unwrap();
    assert_eq!(c.ip_limits, signaling::ip_limits::IpLimits::default());
    assert!(!c.webhook_stats);
    let dir = std::env::temp_dir().join(format!("sy-config-ip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Config::load(Cli {
            config: Some(path.clone()),
            ..Cli::default()
        })
    };
    let c =
        load("[http]\nip_request_rate = 5\nip_request_burst = 50\nip_message_rate = 0\n").unwrap();
    assert_eq!(
        (c.ip_limits.request_rate, c.ip_limits.request_burst),
        (5, 50)
    );
    assert_eq!(c.ip_limits.message_rate, 0, "0 turns the limit off");
    let e = load("[http]\nip_message_burst = 5\n").unwrap_err();
    assert!(format!("{e:#}").contains("ip_message_burst"), "{e:#}");
    let e = load("[http]\nip_request_burst = 0\n").unwrap_err();
    assert!(format!("{e:#}").contains("ip_request_burst"), "{e:#}");
    let c = load("[webhooks]\nstats = true\n").unwrap();
    assert!(c.webhook_stats);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_sample_config_parses() {
    let text = include_str!("../../../switchyard.sample.toml");
    toml::from_str::<FileConfig>(text).unwrap();
}

#[test]
fn unknown_fields_in_the_file_are_refused() {
    assert!(toml::from_str::<FileConfig>("[rtc]\nprot = 1\n").is_err());
}
