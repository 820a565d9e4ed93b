import SwiftUI

/// 设备注册: the relay's address and a one-time code, typed or scanned (`ScanView`).
struct EnrollView: View {
    @Environment(AppModel.self) private var app
    let notice: String?
    @State private var model = EnrollViewModel()

    /// The 这是测试服务器吗？ alert is up while the model has a question.
    private var plainHttpAsked: Binding<Bool> {
        Binding(
            get: { model.plainHttpQuestion != nil },
            set: { shown in
                if !shown { model.declinePlainHttp() }
            })
    }

    var body: some View {
        NavigationStack {
            Form {
                if let notice {
                    Section {
                        Text(verbatim: notice)
                    }
                }
                Section {
                    Button("enroll.scan") { model.startScan() }
                } footer: {
                    Text("enroll.scan.footer")
                }
                Section {
                    TextField("enroll.server.placeholder", text: $model.serverURL)
                        .keyboardType(.URL)
                        .textContentType(.URL)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                } header: {
                    Text("enroll.server")
                } footer: {
                    Text("enroll.server.footer")
                }
                Section {
                    TextField("enroll.code.placeholder", text: $model.code)
                        .textInputAutocapitalization(.characters)
                        .autocorrectionDisabled()
                        .font(.system(.title3, design: .monospaced))
                } header: {
                    Text("enroll.code")
                } footer: {
                    Text("enroll.code.footer")
                }
                Section {
                    Button {
                        Task { await model.submit(app: app) }
                    } label: {
                        HStack {
                            Text("enroll.submit")
                            if model.isWorking {
                                Spacer()
                                ProgressView()
                            }
                        }
                    }
                    .disabled(!model.canSubmit)
                }
                if let message = model.errorMessage {
                    Section {
                        Text(verbatim: message)
                            .foregroundStyle(.red)
                    }
                }
            }
            .navigationTitle("enroll.title")
            .sheet(isPresented: $model.isScanning) {
                ScanView(model: model)
            }
            .alert("enroll.plainHttp.title", isPresented: plainHttpAsked) {
                if let url = model.plainHttpQuestion {
                    Button("enroll.plainHttp.confirm", role: .destructive) {
                        Task { await model.confirmPlainHttp(url, app: app) }
                    }
                }
                Button("common.cancel", role: .cancel) {
                    model.declinePlainHttp()
                }
            } message: {
                Text(verbatim: L.f("enroll.plainHttp.message", model.plainHttpQuestion ?? ""))
            }
        }
    }
}
