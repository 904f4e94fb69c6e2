import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element: local name (namespace prefix dropped), text, children.
struct XMLElementNode: Sendable {
    var name: String
    var text: String
    var children: [XMLElementNode]

    /// The first child named `name`.
    func child(_ name: String) -> XMLElementNode? { children.first { $0.name == name } }
    /// Every child named `name`.
    func children(_ name: String) -> [XMLElementNode] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    func text(_ name: String) -> String? { child(name)?.text }
}

/// Parses S3 XML bodies with Foundation's `XMLParser` (libxml2 SAX). Unknown elements are
/// kept but ignored by callers; external entities are never resolved; nesting deeper than 32
/// levels, more than 1,000,000 elements, or malformed XML is an error, never a crash.
enum S3XML {
    struct ParseError: Error, Sendable {
        var message: String
    }

    static let maximumDepth = 32
    static let maximumElements = 1_000_000

    static func parse(_ bytes: [UInt8]) throws(ParseError) -> XMLElementNode {
        guard !bytes.isEmpty else { throw ParseError(message: "empty XML body") }
        let parser = XMLParser(data: Data(bytes))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        let builder = TreeBuilder()
        parser.delegate = builder
        let ok = parser.parse()
        if let failure = builder.failure { throw ParseError(message: failure) }
        guard ok, let root = builder.root else {
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "unknown"
            throw ParseError(message: "malformed XML (line \(parser.lineNumber)): \(reason)")
        }
        return root
    }

    /// Formats the CompleteMultipartUpload request body ("CompleteMultipartUpload", S3 API
    /// Reference), including each part's checksum under its algorithm's element.
    static func completeMultipartUploadBody(parts: [UploadedPart], checksum: S3Configuration.PartChecksum?) -> [UInt8] {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\"\(escape(part.etag))\"</ETag>"
            if let value = part.checksum {
                switch checksum {
                case .crc32c: xml += "<ChecksumCRC32C>\(escape(value))</ChecksumCRC32C>"
                case .sha256: xml += "<ChecksumSHA256>\(escape(value))</ChecksumSHA256>"
                case .md5, nil: break
                }
            }
            xml += "</Part>"
        }
        xml += "</CompleteMultipartUpload>"
        return Array(xml.utf8)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Parses S3 timestamps (`2024-05-01T12:34:56.000Z`, with or without fractions).
    static func parseDate(_ text: String?) -> Date? {
        guard let text else { return nil }
        let withFractions = ISO8601DateFormatter()
        withFractions.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFractions.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }

    /// Strips the quotes S3 puts around etags.
    static func unquote(_ etag: String?) -> String? {
        guard var etag else { return nil }
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        if etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") { etag = String(etag.dropFirst().dropLast()) }
        return etag
    }
}

/// SAX delegate building an ``XMLElementNode`` tree, with depth and size limits.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLElementNode] = []
    var root: XMLElementNode?
    var failure: String?
    var elements = 0

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:])
    {
        elements += 1
        if stack.count >= S3XML.maximumDepth || elements > S3XML.maximumElements {
            failure = "XML nesting or size over the limit"
            parser.abortParsing()
            return
        }
        if root != nil {
            failure = "XML has more than one root element"
            parser.abortParsing()
            return
        }
        let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
        stack.append(XMLElementNode(name: local, text: "", children: []))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let node = stack.popLast() else { return }
        if stack.isEmpty {
            root = node
        } else {
            stack[stack.count - 1].children.append(node)
        }
    }

    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
        nil
    }
}
