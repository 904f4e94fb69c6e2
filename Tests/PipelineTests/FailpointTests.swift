import Foundation
import Pipeline
import Testing

@Suite("failpoints")
struct FailpointTests {
    @Test("name arms every hit, name@N only the Nth; unknown names are an error naming the point")
    func spec() throws {
        let f = try Failpoints(spec: "after_part_upload@3, before_offset_commit")
        #expect(!f.shouldFire(.afterPartUpload))
        #expect(!f.shouldFire(.afterPartUpload))
        #expect(f.shouldFire(.afterPartUpload))
        #expect(!f.shouldFire(.afterPartUpload))
        #expect(f.shouldFire(.beforeOffsetCommit))
        #expect(f.shouldFire(.beforeOffsetCommit))
        #expect(!f.shouldFire(.afterStageWrite))
        #expect(throws: Failpoints.SpecError.self) { try Failpoints(spec: "after_nothing") }
        #expect(throws: Failpoints.SpecError.self) { try Failpoints(spec: "after_part_upload@0") }
        #expect(Failpoint.allCases.count == 10)
    }
}
