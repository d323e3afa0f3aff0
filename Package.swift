// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "hookgate",
    products: [
        .executable(name: "hookgate", targets: ["hookgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // C libraries, reached through pkg-config. Only HookgateServer (libevent) and
        // HookgateCore's HMAC (libcrypto) import them; nothing re-exports them.
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent libevent_pthreads libevent_openssl",
            providers: [.apt(["libevent-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "HookgateCore",
            dependencies: [
                "COpenSSL",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "HookgateServer",
            dependencies: [
                "HookgateCore",
                "CLibevent",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "hookgate",
            dependencies: [
                "HookgateCore",
                "HookgateServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "HookgateCoreTests",
            dependencies: ["HookgateCore"]
        ),
    ]
)
