import AVFoundation
import SwiftUI
import UIKit

/// 扫描注册码: the camera reads the QR code on a card of the command centre's sheet
/// and the form's model checks it (`EnrollViewModel.scanned`): an enrollment link
/// fills the form and closes this sheet, any other code is refused here. The camera
/// permission is asked for on this sheet, after saying what it is for; without it the
/// worker goes back and types the code.
struct ScanView: View {
    let model: EnrollViewModel
    @Environment(\.scenePhase) private var scenePhase
    @State private var access = AVCaptureDevice.authorizationStatus(for: .video)
    @State private var cameraFailed = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 16) {
                if access == .authorized {
                    if cameraFailed {
                        Text("enroll.scan.cameraFailed")
                    } else {
                        QRScannerView(onCode: { model.scanned($0) }, onFailure: { cameraFailed = true })
                            .aspectRatio(3.0 / 4.0, contentMode: .fit)
                            .clipShape(RoundedRectangle(cornerRadius: 12))
                        Text("enroll.scan.hint")
                        if let message = model.scanMessage {
                            Text(verbatim: message)
                                .foregroundStyle(.red)
                        }
                    }
                } else if access == .notDetermined {
                    Text("enroll.scan.why")
                    Button("enroll.scan.allow") {
                        Task {
                            _ = await AVCaptureDevice.requestAccess(for: .video)
                            access = AVCaptureDevice.authorizationStatus(for: .video)
                        }
                    }
                    .buttonStyle(.borderedProminent)
                } else {
                    // Denied by the user, or restricted (Screen Time, a device profile).
                    Text("enroll.scan.denied")
                    Button("common.openSettings") {
                        if let url = URL(string: UIApplication.openSettingsURLString) {
                            UIApplication.shared.open(url)
                        }
                    }
                }
                Spacer()
            }
            .padding()
            .navigationTitle("enroll.scan.title")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .cancellationAction) {
                    Button("enroll.scan.typeInstead") { model.cancelScan() }
                }
            }
            // Back from Settings, where the camera may have been allowed.
            .onChange(of: scenePhase) { _, phase in
                if phase == .active {
                    access = AVCaptureDevice.authorizationStatus(for: .video)
                }
            }
        }
    }
}
