import Foundation
import Testing

@testable import Airlock

extension AirlockCore {
    @Suite("Intents: immutability, naming, string forms, arguments")
    struct IntentTests {
        // MARK: Immutability

        @Test func anIntentIsAValueAndCopiesAreTheSameIntent() throws {
            let intent = makeIntent("a", args: [1])
            #expect(Mirror(reflecting: intent).displayStyle == .struct)
            let copy = intent
            #expect(copy.id == intent.id)
            #expect(copy.name == intent.name)
            #expect(try copy.arguments() == intent.arguments())
        }

        @Test func theIntentsViewIsACopyOfTheBuffer() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) {
                try enqueue("a")
                var view = scope.intents
                view.removeAll()
                view.append(makeIntent("intruder"))
                #expect(scope.intents.names == ["a"])
                try enqueue("b")
                #expect(view.names == ["intruder"])  // an earlier view does not change either
            }
            #expect(scope.intents.names == ["a", "b"])
        }

        @Test func theTaskValueInsideAnIntentIsAnImmutableCopy() async throws {
            var task = SendEmail(userID: 1, subject: "original")
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) { _ = try Airlock.enqueue(task) }
            task = SendEmail(userID: 2, subject: "changed")
            let buffered = try #require(scope.intents.first?.task as? SendEmail)
            #expect(buffered.userID == 1 && buffered.subject == "original")
            #expect(task.userID == 2)
        }

        // MARK: Naming

        @Test func aTypedTaskIsNamedByItsType() async throws {
            let scope = try makeScope(policy: DropAll())
            try await Airlock.scope(scope) { _ = try Airlock.enqueue(SendEmail(userID: 1, subject: "s")) }
            let intent = try #require(scope.intents.first)
            #expect(intent.name == "myapp.tasks.send_email")
            #expect(intent.taskName == "myapp.tasks.send_email")
        }

        @Test func anExplicitNameOverridesTheNameButNotTheTaskName() {
            let labelled = Intent(name: "label", taskName: "a.b.task", payload: .dynamic(TaskArguments()))
            #expect(labelled.name == "label")
            #expect(labelled.taskName == "a.b.task")
            let unlabelled = Intent(taskName: "a.b.task", payload: .dynamic(TaskArguments()))
            #expect(unlabelled.name == "a.b.task")
        }

        @Test func anExplicitIDIsKeptAndOmittedIDsAreFreshVersion4UUIDs() {
            let fixed = UUID()
            #expect(Intent(id: fixed, taskName: "t", payload: .dynamic(TaskArguments())).id == fixed)
            let ids = (0..<200).map { _ in makeIntent("t").id }
            #expect(Set(ids).count == 200)
            for id in ids.prefix(20) {
                let text = id.uuidString
                let versionIndex = text.index(text.startIndex, offsetBy: 14)
                let variantIndex = text.index(text.startIndex, offsetBy: 19)
                #expect(text[versionIndex] == "4")
                #expect("89AB".contains(text[variantIndex]))
            }
        }

        // MARK: String forms

        @Test func theStringFormReadsLikeACall() {
            let intent = Intent(
                taskName: "send_email", payload: .dynamic(TaskArguments(args: [1, "a"], kwargs: ["k": 2])))
            #expect(intent.description == #"send_email(1, "a", k=2)"#)
            #expect("\(intent)" == #"send_email(1, "a", k=2)"#)
        }

        @Test func keywordArgumentsAreSortedAndValuesAreJSON() {
            let intent = Intent(
                taskName: "t",
                payload: .dynamic(TaskArguments(args: [nil, true, 2.5], kwargs: ["z": [1, 2], "a": ["k": "v"]])))
            #expect(intent.description == #"t(null, true, 2.5, a={"k":"v"}, z=[1,2])"#)
            #expect(makeIntent("noargs").description == "noargs()")
        }

        @Test func aTypedTasksStringFormShowsItsFieldsAsKeywords() {
            let intent = Intent(taskName: SendEmail.name, payload: .typed(SendEmail(userID: 7, subject: "hi")))
            #expect(intent.description == #"myapp.tasks.send_email(subject="hi", userID=7)"#)
            let labelled = Intent(name: "welcome", taskName: SendEmail.name, payload: .typed(SendEmail(userID: 7, subject: "hi")))
            #expect(labelled.description == #"welcome(subject="hi", userID=7)"#)
        }

        @Test func aTaskThatIsNotAnObjectHasAClearStringFormAndArgumentsError() {
            let intent = Intent(taskName: NotAnObjectTask.name, payload: .typed(NotAnObjectTask(value: "v")))
            #expect(intent.description == "tests.not_an_object(<arguments not encodable>)")
            let error = #expect(throws: TaskArgumentsError.self) { try intent.arguments() }
            #expect(error?.description.contains("keyed container") == true)
        }

        // MARK: Typed task <-> arguments

        @Test func aTypedTaskMapsToKeywordArguments() throws {
            let arguments = try TaskArguments(encoding: ResizeImage(path: "/a.png", width: 640, height: 480))
            #expect(arguments.args == [])
            #expect(arguments.kwargs == ["path": "/a.png", "width": 640, "height": 480])
            let viaIntent = try Intent(taskName: ResizeImage.name, payload: .typed(ResizeImage(path: "/b", width: 1))).arguments()
            #expect(viaIntent.kwargs == ["path": "/b", "width": 1])  // nil optional omitted
        }

        @Test func keywordArgumentsDecodeBackIntoTheTask() throws {
            let original = SendEmail(userID: 42, subject: "Welcome \"friend\"\n")
            let decoded = try TaskArguments(encoding: original).decode(SendEmail.self)
            #expect(decoded.userID == 42)
            #expect(decoded.subject == original.subject)
        }

        @Test func positionalArgumentsMapOntoArgumentNames() throws {
            let positional = try TaskArguments(args: ["/a.png", 640, 480]).decode(ResizeImage.self)
            #expect(positional.path == "/a.png" && positional.width == 640 && positional.height == 480)

            let mixed = try TaskArguments(args: ["/a.png"], kwargs: ["width": 320]).decode(ResizeImage.self)
            #expect(mixed.path == "/a.png" && mixed.width == 320 && mixed.height == nil)

            // Keyword arguments override positional ones for the same name.
            let overridden = try TaskArguments(args: ["/a.png", 640], kwargs: ["width": 100]).decode(ResizeImage.self)
            #expect(overridden.width == 100)
        }

        @Test func tooManyPositionalArgumentsIsAClearError() {
            let error = #expect(throws: TaskArgumentsError.self) {
                try TaskArguments(args: ["/a.png", 640, 480, "extra"]).decode(ResizeImage.self)
            }
            #expect(error?.description.contains("takes 3 positional argument(s)") == true)
            #expect(error?.description.contains("got 4") == true)

            let noNames = #expect(throws: TaskArgumentsError.self) { try TaskArguments(args: [1]).decode(SendEmail.self) }
            #expect(noNames?.description.contains("argumentNames") == true)
        }

        @Test func argumentsThatDoNotFitTheTaskAreAClearError() {
            let missing = #expect(throws: TaskArgumentsError.self) {
                try TaskArguments(kwargs: ["userID": 1]).decode(SendEmail.self)
            }
            #expect(missing?.description.contains("do not decode as SendEmail") == true)
            #expect(missing?.description.contains("myapp.tasks.send_email") == true)

            #expect(throws: TaskArgumentsError.self) {
                try TaskArguments(kwargs: ["userID": "not a number", "subject": "s"]).decode(SendEmail.self)
            }
        }

        // MARK: Dispatch options

        @Test func dispatchOptionsMergeFieldByField() {
            let base = DispatchOptions(queue: "q", maxRetries: 3, extra: ["a": 1, "b": 1])
            let merged = base.merged(with: DispatchOptions(priority: 1, extra: ["b": 2]))
            #expect(merged.queue == "q")
            #expect(merged.maxRetries == 3)
            #expect(merged.priority == 1)
            #expect(merged.extra == ["a": 1, "b": 2])
            #expect(base.merged(with: DispatchOptions()) == base)
        }

        @Test func dueAndExpiryDates() {
            let now = Date(timeIntervalSince1970: 1_000)
            #expect(DispatchOptions().dueDate(dispatchedAt: now) == nil)
            #expect(DispatchOptions(countdown: .seconds(60)).dueDate(dispatchedAt: now) == Date(timeIntervalSince1970: 1_060))
            let eta = Date(timeIntervalSince1970: 2_000)
            #expect(DispatchOptions(eta: eta).dueDate(dispatchedAt: now) == eta)
            // Both set: the later wins.
            #expect(DispatchOptions(countdown: .seconds(5_000), eta: eta).dueDate(dispatchedAt: now) == Date(timeIntervalSince1970: 6_000))
            #expect(DispatchOptions(countdown: .seconds(1), eta: eta).dueDate(dispatchedAt: now) == eta)
            #expect(DispatchOptions(expires: .after(.milliseconds(1_500))).expiryDate(dispatchedAt: now) == Date(timeIntervalSince1970: 1_001.5))
            #expect(DispatchOptions(expires: .at(eta)).expiryDate(dispatchedAt: now) == eta)
            #expect(DispatchOptions().expiryDate(dispatchedAt: now) == nil)
        }
    }
}
